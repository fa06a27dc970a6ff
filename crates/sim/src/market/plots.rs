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
        "tail viability over traffic, per demand concentration".into(),
    ));
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

/// The viable tail over traffic, per policy and concentration.
fn grid_plot(r: &StudyResult) -> String {
    let mut keys: Vec<(String, f64)> = Vec::new();
    for p in &r.grid {
        let k = (p.policy.label(), p.concentration);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let grid: Vec<Series> = keys
        .iter()
        .map(|(label, c)| Series {
            name: format!("{label}, c={c}"),
            points: r
                .grid
                .iter()
                .filter(|p| &p.policy.label() == label && p.concentration == *c)
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
            .map(|i| Model {
                builder: i % 3,
                task: 0,
                key: i as u64,
                downloads: (i * 10) as f64,
                params_m: 110.0,
                params_known: false,
                price: 0.0,
                entry_day: 0,
            })
            .collect();
        let base = Base {
            models,
            builders: (0..3)
                .map(|i| Builder {
                    tail: i > 0,
                    entrant: false,
                })
                .collect(),
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
            days: 31,
            years: 2,
            pilot_days: 5,
            visits_per_day: 20,
            traffic: 20.0,
            seeds: 2,
            grid_seeds: 1,
            grid_visits_per_day: 10,
            grid_traffic: vec![20.0],
            grid_concentration: vec![1.0],
            threads: 1,
            sensitivity_trajectories: 2,
            ..StudyOptions::quick()
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
        assert!(!report.contains("frontier.svg"));
        assert!(listed.contains(&"tornado.svg".to_string()));
    }
}
