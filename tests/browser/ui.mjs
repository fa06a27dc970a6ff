// The search page as a person uses it, in Debian's Chromium (driven by
// playwright-core; no browser download): browse, click a facet value, add a
// second value of the same facet, ask for models like a hit, type with
// suggestions (keyboard and mouse), read marked snippets, and a card whose
// text holds a script (on a hub of its own: no script runs). Every step
// checks the page against the API's own answer for the same request, and
// keeps a screenshot in eval/screenshots/.
//
//   node tests/browser/ui.mjs http://127.0.0.1:PORT /usr/bin/chromium
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

  // 5. Typing: suggestions from /v1/suggest, keyboard up/down/enter.
  const sugShown = () => page.$$eval("#suggestions li .value", (els) => els.map((e) => e.textContent));
  const typeInto = async (text) => {
    await page.fill("#q", "");
    await page.type("#q", text, { delay: 30 });
  };
  await page.goto(`${base}/`);
  await settle();
  await typeInto("opus");
  await page.waitForSelector("#suggestions li");
  const sug = await api("/v1/suggest?q=opus&limit=8");
  check("suggestions are the API's", JSON.stringify(await sugShown()) === JSON.stringify(sug.suggestions.map((s) => s.value)), `${await sugShown()}`);
  check("the combobox says it is expanded", (await page.getAttribute("#q", "aria-expanded")) === "true");
  check("the list is a listbox of options", (await page.$$eval("#suggestions[role=listbox] li[role=option]", (e) => e.length)) === sug.suggestions.length);
  await page.keyboard.press("ArrowDown");
  check("down selects the first suggestion", (await page.getAttribute("#sug-0", "aria-selected")) === "true" && (await page.getAttribute("#q", "aria-activedescendant")) === "sug-0");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowUp");
  check("up goes back", (await page.getAttribute("#sug-0", "aria-selected")) === "true");
  await page.screenshot({ path: shots + "suggest.png" });
  await page.keyboard.press("Enter");
  await page.waitForFunction((v) => new URLSearchParams(location.search).get("q") === v, sug.suggestions[0].value);
  await settle();
  check("enter searches the chosen model", (await page.getAttribute("#hit-1", "data-id")) === sug.suggestions[0].value, await page.getAttribute("#hit-1", "data-id"));
  check("choosing closes the list", await page.$eval("#suggestions", (e) => e.hidden) && (await page.getAttribute("#q", "aria-expanded")) === "false");

  // 6. Escape closes; a click chooses.
  await typeInto("bert");
  await page.waitForSelector("#suggestions li");
  await page.keyboard.press("Escape");
  check("escape closes the suggestions", await page.$eval("#suggestions", (e) => e.hidden));
  await typeInto("tapas");
  await page.waitForSelector("#suggestions li");
  const clicked = (await sugShown())[0];
  await page.click("#sug-0");
  await page.waitForFunction((v) => new URLSearchParams(location.search).get("q") === v, clicked);
  await settle();
  check("a click chooses", (await page.inputValue("#q")) === clicked && (await page.getAttribute("#hit-1", "data-id")) === clicked, clicked);

  // 7. Snippets: the matched words are marked, as the API marks them.
  await page.goto(`${base}/?q=german+speech+recognition`);
  await page.waitForSelector("#hit-1 .snippet mark");
  const marks = await page.$$eval("#hit-1 .snippet mark", (els) => els.map((e) => e.textContent.toLowerCase()));
  const answer = await api("/v1/search?q=german+speech+recognition");
  const apiMarks = [...answer.hits[0].formatted.matchAll(/<mark>(.*?)<\/mark>/g)].map((m) => m[1].toLowerCase());
  check("the page shows the API's marks", marks.length > 0 && JSON.stringify(marks) === JSON.stringify(apiMarks), `${marks} vs ${apiMarks}`);
  check("marks are query words", marks.every((m) => ["german", "speech", "recognition"].includes(m)), `${marks}`);
  await page.screenshot({ path: shots + "snippets.png" });

  // 8. A card whose text holds a script, on a hub of its own: shown as
  //    text, never run.
  await scriptCard(page);
} finally {
  await browser.close();
}

// A hub with one card whose description and body hold HTML (imported, hash
// vectors), searched on the page: no script runs, no handler fires, the
// code span's tag reads as text and the match is marked.
async function scriptCard(page) {
  const bin = new URL("../../target/release/hubsearch", import.meta.url).pathname;
  const dir = mkdtempSync(join(tmpdir(), "hubsearch-ui-"));
  const env = { ...process.env, HUBSEARCH_EMBEDDING__MODEL: "hash" };
  const card = {
    id: "acme/sarcasm-detector", task: "text-classification", downloads: 5,
    description: "Detects sarcasm <script>window.ran = 1; alert(1)</script> in tweets <img src=x onerror=\"window.ran = 2\"> (try `<script>alert(3)</script>`).",
    card_text: "---\nlicense: mit\n---\n# Detector\n\n<script>window.ran = 3</script>A **sarcasm** model.",
  };
  writeFileSync(join(dir, "cards.jsonl"), JSON.stringify(card) + "\n");
  execFileSync(bin, ["--index", join(dir, "idx"), "import", "--quiet", join(dir, "cards.jsonl")], { env, stdio: "ignore" });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const other = `http://127.0.0.1:${port}`;
  const server = spawn(bin, ["--index", join(dir, "idx"), "serve", "--addr", `127.0.0.1:${port}`], { env, stdio: "ignore" });
  try {
    for (let i = 0; i < 100; i++) {
      try { if ((await fetch(other + "/healthz")).ok) break; } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    let dialogs = 0;
    page.on("dialog", (d) => { dialogs++; d.dismiss(); });
    await page.goto(`${other}/?q=sarcasm+tweets`);
    await page.waitForSelector("#hit-1 .snippet");
    await page.waitForTimeout(300);
    const f = (await (await fetch(`${other}/v1/search?q=sarcasm+tweets`)).json()).hits[0].formatted;
    check("the API's snippet has no markup but marks", !/<(?!\/?mark>)/i.test(f), f);
    check("no script ran", dialogs === 0 && (await page.evaluate(() => window.ran)) === undefined, `${dialogs} ${await page.evaluate(() => window.ran)}`);
    check("no element came from the card", (await page.$$eval(".hit script, .hit img", (e) => e.length)) === 0);
    const text = await page.textContent("#hit-1 .snippet");
    check("a tag in code reads as text", text.includes("<script>alert(3)</script>"), text);
    const marks = await page.$$eval("#hit-1 .snippet mark", (els) => els.map((e) => e.textContent));
    check("the matches are marked", JSON.stringify(marks) === JSON.stringify(["sarcasm", "tweets"]), `${marks}`);
    await page.screenshot({ path: shots + "snippet-script.png" });
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
