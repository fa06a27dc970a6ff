//! REPORT.md's plots, as SVG (no plotting dependency): each listed once in
//! [`plots`], which both the writer and the report follow.

use std::path::Path;

use hubsearch_core::PolicyKind;

use super::study::{Cell, REGIMES};
use super::{Regime, StudyResult};
use crate::svg::{line_chart, Series};

/// Every plot: its file and what it shows (the report links exactly these).
pub fn plots(r: &StudyResult) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for g in REGIMES {
        v.push((
            format!("viable-tail-{}.svg", g.name()),
            format!(
                "tail builders making a profit over time, {} hosting",
                g.name()
            ),
        ));
    }
    for g in REGIMES {
        v.push((
            format!("frontier-{}.svg", g.name()),
            format!(
                "users' welfare against tail viability, every swept knob value, {} hosting",
                g.name()
            ),
        ));
    }
    v.push((
        "entrant-survival.svg".into(),
        "entrant survival by age, either hosting".into(),
    ));
    v.push((
        "lorenz-income.svg".into(),
        "Lorenz curves of builders' income, either hosting".into(),
    ));
    v.push((
        "grid.svg".into(),
        "tail viability over traffic, per demand concentration and margin".into(),
    ));
    if r.upper.is_some() {
        v.push((
            "frontier.svg".into(),
            "the upper bound: the most tail builders any ranking could make viable at each welfare floor (LP), beside the policies (serverless)".into(),
        ));
    }
    if !r.grid.is_empty() {
        v.push((
            "phase.svg".into(),
            "phase diagram: where the majority of the tail makes $100 a month (traffic x concentration, per margin)".into(),
        ));
    }
    if r.sensitivity.is_some() {
        v.push((
            "tornado.svg".into(),
            "Morris screening of the priors: mu* of the tail share making a profit".into(),
        ));
    }
    v
}

/// The SVG plots of REPORT.md, into `out`.
pub fn write_plots(r: &StudyResult, out: &Path) -> std::io::Result<()> {
    let write = |file: &str, svg: String| std::fs::write(out.join(file), svg);
    for regime in REGIMES {
        write(
            &format!("viable-tail-{}.svg", regime.name()),
            viable_tail_plot(r, regime),
        )?;
        write(
            &format!("frontier-{}.svg", regime.name()),
            frontier_plot(r, regime),
        )?;
    }
    let either: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.regime == Regime::Either)
        .collect();
    write("entrant-survival.svg", survival_plot(&either))?;
    write("lorenz-income.svg", lorenz_plot(&either))?;
    write("grid.svg", grid_plot(r))?;
    if let Some(u) = &r.upper {
        write("frontier.svg", upper_plot(r, u))?;
    }
    if !r.grid.is_empty() {
        write("phase.svg", phase_plot(r))?;
    }
    if let Some(sens) = &r.sensitivity {
        write("tornado.svg", tornado(sens))?;
    }
    Ok(())
}

/// The viable tail share by day, per cell of `regime`.
fn viable_tail_plot(r: &StudyResult, regime: Regime) -> String {
    let series: Vec<Series> = r
        .cells
        .iter()
        .filter(|c| c.regime == regime)
        .map(|c| Series {
            name: c.policy.label(),
            points: c
                .viable_tail_by_day
                .iter()
                .enumerate()
                .map(|(d, v)| ((d + 1) as f64, *v))
                .collect(),
        })
        .collect();
    line_chart(
        &format!("Tail builders making a profit ({} hosting)", regime.name()),
        "day",
        "share of tail builders",
        &series,
        false,
    )
}

/// Entrants' survival by age, per cell.
fn survival_plot(cells: &[&Cell]) -> String {
    let survival: Vec<Series> = cells
        .iter()
        .map(|c| Series {
            name: c.policy.label(),
            points: c
                .entrant_survival
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(a, v)| (a as f64, *v))
                .collect(),
        })
        .collect();
    line_chart(
        "Entrants still listed (either hosting)",
        "age (days)",
        "share surviving",
        &survival,
        false,
    )
}

/// Welfare against the viable tail, every knob value of each family.
fn frontier_plot(r: &StudyResult, regime: Regime) -> String {
    let mut fams: Vec<PolicyKind> = r
        .sweep
        .iter()
        .filter(|p| p.regime == regime)
        .map(|p| p.policy.kind())
        .collect();
    fams.dedup();
    let frontier: Vec<Series> = fams
        .iter()
        .map(|f| Series {
            name: f.to_string(),
            points: r
                .sweep
                .iter()
                .filter(|p| p.regime == regime && p.policy.kind() == *f)
                .map(|p| (p.tail_viable_share, p.welfare))
                .collect(),
        })
        .collect();
    line_chart(
        &format!("Welfare against tail viability ({} hosting)", regime.name()),
        "tail builders making a profit at the end (tuning seeds)",
        "users' expected surplus per visit (utils)",
        &frontier,
        true,
    )
}

/// Lorenz curves of builders' income, per cell.
fn lorenz_plot(cells: &[&Cell]) -> String {
    let lorenz: Vec<Series> = cells
        .iter()
        .map(|c| Series {
            name: c.policy.label(),
            points: c.lorenz_income.clone(),
        })
        .collect();
    line_chart(
        "Builders' income, Lorenz (either hosting)",
        "share of builders",
        "share of income",
        &lorenz,
        false,
    )
}

/// The viable tail over traffic, per policy, concentration and margin.
fn grid_plot(r: &StudyResult) -> String {
    let mut keys: Vec<(String, f64, f64)> = Vec::new();
    for p in &r.grid {
        // The family, not the label: fair's knob is re-tuned per cell.
        let k = (p.policy.name().to_string(), p.concentration, p.markup);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let grid: Vec<Series> = keys
        .iter()
        .map(|(label, c, mk)| Series {
            name: format!("{label}, c={c}, markup {mk}"),
            points: r
                .grid
                .iter()
                .filter(|p| p.policy.name() == label && p.concentration == *c && p.markup == *mk)
                .map(|p| (p.traffic.log10(), p.tail_viable[0].mean))
                .collect(),
        })
        .collect();
    line_chart(
        &format!("Tail viability over traffic ({})", r.grid_regime.name()),
        "log10 visits per day",
        "tail builders making a profit",
        &grid,
        true,
    )
}

/// The LP's frontier (welfare floor against the most tail builders viable
/// at its threshold) with relevance's page under the same bound, and the
/// simulated serverless policies (their welfare relative to relevance's,
/// their tail share at the threshold).
fn upper_plot(r: &StudyResult, u: &super::upper::Frontier) -> String {
    let k = r
        .options
        .thresholds_usd
        .iter()
        .position(|&t| t >= u.threshold_usd);
    let mut series = vec![Series {
        name: "LP upper bound".into(),
        points: u
            .points
            .iter()
            .filter(|p| p.viable_share.is_finite())
            .map(|p| (p.welfare_ratio, p.viable_share))
            .collect(),
    }];
    series.push(Series {
        name: "relevance (bound's model)".into(),
        points: vec![(1.0, u.relevance_share)],
    });
    if let Some(k) = k {
        for c in r.cells.iter().filter(|c| c.regime == Regime::Serverless) {
            if let Some(p) = c.periods.last() {
                series.push(Series {
                    name: c.policy.label(),
                    points: vec![(
                        1.0 + c.vs_relevance.welfare_ratio.mean,
                        p.tail_viable[k].mean,
                    )],
                });
            }
        }
    }
    line_chart(
        &format!(
            "Upper bound: tail making ${:.0}/month (serverless)",
            u.threshold_usd
        ),
        "welfare / relevance's",
        "share of tail builders",
        &series,
        true,
    )
}

/// The phase diagram: one panel per margin (markup median), a cell per
/// (concentration, traffic) coloured by relevance's tail share making $100
/// a month, outlined where the majority of the tail makes it (interval's
/// lower end >= 50%); the tuned fair's share beside it.
fn phase_plot(r: &StudyResult) -> String {
    use std::fmt::Write as _;
    let k = r
        .options
        .thresholds_usd
        .iter()
        .position(|&t| t >= 100.0)
        .unwrap_or(0);
    let mut markups: Vec<f64> = r.grid.iter().map(|p| p.markup).collect();
    markups.sort_by(f64::total_cmp);
    markups.dedup();
    let mut traffic: Vec<f64> = r.grid.iter().map(|p| p.traffic).collect();
    traffic.sort_by(f64::total_cmp);
    traffic.dedup();
    let mut conc: Vec<f64> = r.grid.iter().map(|p| p.concentration).collect();
    conc.sort_by(f64::total_cmp);
    conc.dedup();
    let (cw, ch, left, top) = (90.0, 44.0, 110.0, 60.0);
    let panel_h = top + ch * conc.len() as f64 + 40.0;
    let width = left + cw * traffic.len() as f64 + 30.0;
    let height = panel_h * markups.len() as f64 + 20.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (pi, &mk) in markups.iter().enumerate() {
        let y0 = panel_h * pi as f64;
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.0}\" font-size=\"13\" font-weight=\"bold\">Tail making $100/month under relevance (in brackets: fair), markup median {mk}, {} hosting; red outline: a majority</text>",
            y0 + 22.0,
            r.grid_regime.name()
        );
        for (ti, &t) in traffic.iter().enumerate() {
            let _ = writeln!(
                s,
                "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">{t:.0} visits/day</text>",
                left + cw * (ti as f64 + 0.5),
                y0 + top - 8.0
            );
        }
        for (ci, &c) in conc.iter().enumerate() {
            let y = y0 + top + ch * ci as f64;
            let _ = writeln!(
                s,
                "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">concentration {c}</text>",
                left - 8.0,
                y + ch / 2.0 + 4.0
            );
            for (ti, &t) in traffic.iter().enumerate() {
                let at = |fair: bool| {
                    r.grid.iter().find(|p| {
                        p.markup == mk
                            && p.traffic == t
                            && p.concentration == c
                            && (matches!(p.policy, super::StudyPolicy::Fair { .. }) == fair)
                            && (fair || p.policy == super::StudyPolicy::Relevance)
                    })
                };
                let Some(rel) = at(false) else { continue };
                let e = rel.tail_viable[k];
                let v = if e.mean.is_finite() {
                    e.mean.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                // White (0) to dark blue (1).
                let shade = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
                let colour = format!(
                    "#{:02x}{:02x}{:02x}",
                    shade(255.0, 29.0),
                    shade(255.0, 53.0),
                    shade(255.0, 87.0)
                );
                let sustainable = e.lo >= 0.5;
                let x = left + cw * ti as f64;
                let _ = writeln!(
                    s,
                    "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{cw}\" height=\"{ch}\" fill=\"{colour}\" stroke=\"{}\" stroke-width=\"{}\"/>",
                    if sustainable { "#e63946" } else { "#999" },
                    if sustainable { 3 } else { 1 }
                );
                let fair = at(true).map_or(String::new(), |f| {
                    format!(" ({:.0}%)", 100.0 * f.tail_viable[k].mean)
                });
                let _ = writeln!(
                    s,
                    "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"{}\">{:.0}%{fair}</text>",
                    x + cw / 2.0,
                    y + ch / 2.0 + 4.0,
                    if v > 0.5 { "white" } else { "black" },
                    100.0 * e.mean
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Horizontal bars of each factor's mu* (largest on top), with sigma as a
/// whisker: the tornado of the Morris screening.
fn tornado(sens: &super::sensitivity::Sensitivity) -> String {
    use std::fmt::Write as _;
    let mut effects = sens.profit.clone();
    effects.sort_by(|a, b| b.mu_star.total_cmp(&a.mu_star));
    let max = effects
        .iter()
        .map(|e| e.mu_star + e.sigma)
        .fold(1e-12, f64::max);
    let (left, width, row) = (260.0, 340.0, 28.0);
    let height = 60.0 + row * effects.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"320\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">Morris mu* on the tail share making a profit (whisker: sigma)</text>\n"
    );
    for (i, e) in effects.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let w = width * e.mu_star / max;
        let ws = width * (e.mu_star + e.sigma) / max;
        let _ = writeln!(
            s,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"{:.0}\" fill=\"{}\"/><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.0}\">{:.3}</text>",
            left - 8.0,
            y + 16.0,
            e.name,
            y + 4.0,
            row - 8.0,
            if e.mu < 0.0 { "#e63946" } else { "#1d3557" },
            left + w,
            left + ws,
            y + 12.0,
            y + 12.0,
            left + ws + 6.0,
            y + 16.0,
            e.mu_star
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::study::run_study;
    use crate::market::world::{Base, Builder, Cand, Kind, Model, QueryType};
    use crate::market::StudyOptions;

    /// The report links exactly the plots written: a tiny study, its plots
    /// into a directory, the directory's SVGs against the list.
    #[test]
    fn the_report_links_exactly_the_plots_written() {
        let models = (0..6)
            .map(|i| Model::free(i % 3, 0, i as u64, (i * 10) as f64))
            .collect();
        let base = Base {
            models,
            builders: (0..3).map(|i| Builder::incumbent(i > 0)).collect(),
            tasks: vec!["t".into()],
            types: vec![QueryType {
                text: "q".into(),
                kind: Kind::Need,
                task: 0,
                downloads: 10.0,
                cands: (0..6)
                    .map(|m| Cand {
                        model: m,
                        relevance: 1.0 - m as f64 / 10.0,
                        grade: (m % 3) as u8,
                    })
                    .collect(),
            }],
            models_without_task: 0,
        };
        let o = StudyOptions {
            traffic: 20.0,
            threads: 1,
            sensitivity_trajectories: 2,
            entry_rate: StudyOptions::quick().entry_rate,
            ..StudyOptions::tiny()
        };
        let r = run_study(&base, &o, &|_| {});
        let dir = tempfile::tempdir().unwrap();
        write_plots(&r, dir.path()).unwrap();
        let mut written: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        let mut listed: Vec<String> = plots(&r).into_iter().map(|p| p.0).collect();
        listed.sort();
        assert_eq!(written, listed);
        let report = crate::market::report::report(&r, "x", Path::new("i"), "c");
        for f in &listed {
            assert!(report.contains(&format!("]({f})")), "{f} not linked");
        }
        for f in ["tornado.svg", "frontier.svg", "phase.svg"] {
            assert!(listed.contains(&f.to_string()), "{f} not written");
        }
        // The strategic stage's fixed-price, copying supply runs the
        // headline's worlds and dice (the same seeds): its figures are the
        // headline's either cell's, and its paired difference is zero.
        for c in r
            .supply
            .iter()
            .filter(|c| !c.repricing && !c.seeking_entrants)
        {
            let h = r
                .cells
                .iter()
                .find(|h| h.regime == Regime::Either && h.policy == c.policy)
                .expect("a headline cell");
            let end = h.periods.last().unwrap();
            assert_eq!(c.end.tail_viable[0].mean, end.tail_viable[0].mean);
            assert_eq!(c.welfare.mean, h.figures.welfare.mean);
            assert_eq!(c.vs_fixed.tail_viable[0].mean, 0.0);
        }
        assert_eq!(r.supply.len(), 4 * 3);
        // The validation's target: the top 1% of 6 models is 1 model (the
        // share rounds up), the one with 50 of the 150 downloads.
        let v = r.validation.as_ref().expect("validation");
        assert!((v.target - 50.0 / 150.0).abs() < 1e-12);
        assert!(
            report.contains("**Validation: PASS.**") || report.contains("**Validation: FAIL.**")
        );
    }
}
