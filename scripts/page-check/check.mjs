// scripts/page-check/check.mjs: drives the page `imdb-lora serve` serves at / in headless Chromium, as a user would.
//
//   node check.mjs http://127.0.0.1:3000 [--screenshot docs/images/serve-page.png]
//
// Chromium is Debian's (/usr/bin/chromium, or $CHROMIUM); playwright-core only drives it.
// Exits 1, naming the check, on the first one that fails.
import { chromium } from "playwright-core";

const usage = "usage: node check.mjs URL [--screenshot PATH]";
const argv = process.argv.slice(2);
let url;
let screenshot;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--screenshot" && i + 1 < argv.length) screenshot = argv[++i];
  else if (!url && !argv[i].startsWith("-")) url = argv[i].replace(/\/+$/, "");
  else fail(usage);
}
if (!url) fail(usage);

const REVIEW = "A triumph from start to finish: the cast is superb and the story never lets go.";

function fail(message) {
  console.error(`page-check: FAILED: ${message}`);
  process.exit(1);
}
function check(ok, what, detail = "") {
  if (!ok) throw new Error(`${what}${detail ? ` (${detail})` : ""}`);
  console.log(`page-check: ok - ${what}`);
}
const near = (a, b, tolerance) => Math.abs(a - b) <= tolerance;

let browser;
try {
  // What the server says, asked directly, to compare the page against.
  const info = await (await fetch(`${url}/info`)).json();
  const adapters = info.adapters.map((a) => a.name);
  const labelsOf = (name) =>
    info.adapters.find((a) => a.name === name)?.labels ?? Object.values(info.model_type.classifier.id2label);
  const emptyAnswer = await fetch(`${url}/predict`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ inputs: "", truncate: true }),
  });
  const emptyError = await emptyAnswer.json();

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // No calls home: the network may be closed, and the page must not need it.
    args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.setDefaultTimeout(20_000);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // (Chromium logs the expected 400 as a console error "Failed to load resource": not ours.)
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
  });
  // What the page fetches: only its own server (no CDN).
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(`${url}/`)) foreign.push(r.url()); });

  const response = await page.goto(`${url}/`);
  check(response.ok(), "GET / answers 200", `${response.status()}`);

  // The adapter list is filled from /info.
  await page.waitForFunction(() => document.querySelectorAll("#adapter option").length > 0);
  const options = await page.locator("#adapter option").evaluateAll((os) => os.map((o) => o.value));
  const expected = adapters.length ? adapters : [""];
  check(JSON.stringify(options) === JSON.stringify(expected), "the adapter list is /info's adapters",
    `page ${JSON.stringify(options)}, /info ${JSON.stringify(expected)}`);
  const model = await page.locator("#model").textContent();
  check(model.includes(info.model_id) && model.includes(`${info.max_input_length} tokens`),
    "the model line shows /info's model and length limit", model);

  // A review, classified.
  const adapter = expected[expected.length - 1];
  if (adapter) await page.selectOption("#adapter", adapter);
  const labels = labelsOf(adapter || info.default_adapter);
  await page.fill("#text", REVIEW);
  await page.click("#go");
  await page.locator("#result").waitFor({ state: "visible" });
  const label = await page.locator("#label").textContent();
  check(labels.includes(label), `the label shown is one of the model's (${labels.join(", ")})`, label);
  const bars = await page.locator("#bars .bar").evaluateAll((rows) => rows.map((row) => ({
    name: row.children[0].textContent,
    fraction: row.querySelector(".fill").getBoundingClientRect().width /
      row.querySelector(".track").getBoundingClientRect().width,
    number: Number(row.querySelector(".num").textContent),
  })));
  check(bars.length === labels.length && labels.every((l) => bars.some((b) => b.name === l)),
    "one bar per label", JSON.stringify(bars.map((b) => b.name)));
  const numbers = bars.map((b) => b.number);
  check(near(numbers.reduce((s, n) => s + n, 0), 1, 1e-3), "the probabilities shown sum to 1",
    JSON.stringify(numbers));
  check(numbers.every((n, i) => i === 0 || numbers[i - 1] >= n) && bars[0].name === label,
    "bars run from the most likely label, the one shown, down");
  const drawn = bars.map((b) => b.fraction);
  check(drawn.every((d, i) => near(d, numbers[i], 0.01)) && near(drawn.reduce((s, d) => s + d, 0), 1, 0.02),
    "each bar is drawn as wide as its probability", JSON.stringify(drawn));
  const timing = await page.locator("#timing").textContent();
  check(/^\d+ tokens · total \d+ ms/.test(timing), "the timing line shows the server's headers", timing);
  check(await page.locator("#go").isEnabled(), "Classify is enabled again after the answer");

  // The server out of reach: the page says so and hides the old result; a retry recovers.
  await page.route(`${url}/predict`, (route) => route.abort("connectionrefused"));
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("error").textContent !== "");
  check(await page.locator("#result").isHidden(), "a failed request shows an error, not the old result",
    await page.locator("#error").textContent());
  await page.unroute(`${url}/predict`);
  await page.click("#go");
  await page.locator("#result").waitFor({ state: "visible" });
  check(await page.locator("#error").textContent() === "", "a retry's answer clears the error");

  // An empty text: the page shows the server's 400 error and hides the old result.
  await page.fill("#text", "");
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("error").textContent !== "");
  const error = await page.locator("#error").textContent();
  const want = `${emptyAnswer.status} ${emptyError.error_type}: ${emptyError.error}`;
  check(emptyAnswer.status === 400 && error === want, "an empty text shows the server's 400 error",
    `page "${error}", server "${want}"`);
  check(await page.locator("#result").isHidden(), "the error hides the previous result");

  // Back to the review for the screenshot, sent with Ctrl+Enter twice in a row: one request
  // (the second press comes while the first is in flight).
  await page.fill("#text", REVIEW);
  let predicts = 0;
  page.on("request", (r) => { if (r.url() === `${url}/predict`) predicts++; });
  await page.locator("#text").evaluate((text) => {
    for (let i = 0; i < 2; i++) text.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", ctrlKey: true }));
  });
  await page.locator("#result").waitFor({ state: "visible" });
  await page.waitForFunction(() => !document.getElementById("go").disabled);
  check(predicts === 1, "Ctrl+Enter pressed twice sends one request", `${predicts}`);
  check(await page.locator("#error").textContent() === "", "the answer clears the 400 error");

  check(pageErrors.length === 0, "no script errors on the page", pageErrors.join("; "));
  check(foreign.length === 0, "the page fetches nothing but its own server", foreign.join(", "));
  if (screenshot) {
    await page.screenshot({ path: screenshot });
    console.log(`page-check: screenshot in ${screenshot}`);
  }
} catch (e) {
  await browser?.close();
  fail(e.cause ? `${e.message}: ${e.cause.message ?? e.cause}` : e.message);
}
await browser.close();
console.log("page-check: all checks passed");
