// The search page as a person uses it, in Debian's Chromium (driven by
// playwright-core; no browser download): browse, click a facet value, add a
// second value of the same facet, ask for models like a hit. Every step
// checks the page against the API's own answer for the same request, and
// keeps a screenshot in eval/screenshots/.
//
//   node tests/browser/ui.mjs http://127.0.0.1:PORT /usr/bin/chromium
import { chromium } from "playwright-core";

const [base, executablePath] = process.argv.slice(2);
const shots = new URL("../../eval/screenshots/", import.meta.url).pathname;
let passed = 0;
let failed = 0;
function check(what, ok, detail = "") {
  if (ok) passed++;
  else { failed++; console.error(`FAILED: ${what} ${detail}`); }
}
const api = async (path) => (await fetch(base + path)).json();
const ids = (hits) => hits.map((h) => h.id).sort();

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const shown = async () => (await page.$$eval(".hit", (els) => els.map((e) => e.dataset.id))).sort();
  const settle = async () => {
    await page.waitForFunction(() => !document.querySelector("#status").textContent.startsWith("searching"));
  };

  // 1. A query: hits and facet counts appear.
  await page.goto(`${base}/?q=opus+mt+en+de`);
  await page.waitForSelector("#hit-1");
  check("the named model is first", (await page.textContent("#hit-1 h3")).includes("Helsinki-NLP/opus-mt-en-de"));
  await page.screenshot({ path: shots + "search.png" });

  // 2. Browse everything, click one language: the page shows what the API
  //    answers for that filter, and the URL keeps it.
  await page.goto(`${base}/`);
  await page.waitForSelector("#facet-language .fv");
  await settle();
  const all = await api("/v1/search?per_page=100");
  check("browsing lists every card", (await shown()).length === Math.min(all.total, 10), `${(await shown()).length} vs ${all.total}`);
  await page.click('#facet-language .fv[data-value="de"]');
  await page.waitForFunction(() => location.search.includes("language=de"));
  await settle();
  const de = await api("/v1/search?per_page=100&language=de");
  check("one language value filters", JSON.stringify(await shown()) === JSON.stringify(ids(de.hits)), `${await shown()} vs ${ids(de.hits)}`);
  check("the value shows as selected", await page.$eval('#facet-language .fv[data-value="de"]', (e) => e.classList.contains("on")));
  // The other values of the selected facet stay (disjunctive counts).
  const frCount = await page.textContent('#facet-language .fv[data-value="fr"]');
  check("other values of the selected facet stay visible", frCount !== null && /\(\d+\)/.test(frCount), frCount);
  await page.screenshot({ path: shots + "facet-one-value.png" });

  // 3. A second value of the same facet: any of them (OR).
  await page.click('#facet-language .fv[data-value="fr"]');
  await page.waitForFunction(() => location.search.includes("language=fr"));
  await settle();
  const deFr = await api("/v1/search?per_page=100&language=de&language=fr");
  check("two values of one facet are OR-ed", JSON.stringify(await shown()) === JSON.stringify(ids(deFr.hits)), `${await shown()} vs ${ids(deFr.hits)}`);
  check("OR finds at least as many", deFr.total >= de.total && deFr.total < all.total, `${deFr.total} ${de.total} ${all.total}`);
  await page.screenshot({ path: shots + "facet-two-values.png" });

  // 4. Models like the first hit.
  const first = await page.getAttribute("#hit-1", "data-id");
  await page.click("#hit-1 .similar-link");
  await page.waitForSelector("#hit-1 .similar-hit");
  const similarShown = await page.$$eval("#hit-1 .similar-hit", (els) => els.map((e) => e.textContent.split(" ")[0]));
  const similar = await api(`/v1/models/${first}/similar?per_page=5`);
  check("similar models are listed", similarShown.length > 0 && JSON.stringify(similarShown) === JSON.stringify(similar.hits.map((h) => h.id)), `${similarShown} vs ${similar.hits.map((h) => h.id)}`);
  check("a model is not like itself", !similarShown.includes(first));
  await page.screenshot({ path: shots + "similar.png" });
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
