// Grade one HTTP response with MDN HTTP Observatory's own analyzer and grader (no network).
// stdin: {"url": "https://host/", "status": 200, "headers": [[name, value], ...], "body": "..."}
// stdout: {"score": n, "grade": "A+", "tests": {name: {result, pass, scoreModifier}}}
// The response object is shaped like the one the package's own test helpers (test/helpers.js) build;
// the HTTP->HTTPS redirect chain is the helpers' synthetic one (redirects are a deployment concern).
import { AxiosHeaders } from "axios";

import { Requests } from "./node_modules/@mdn/mdn-http-observatory/src/types.js";
import { Session } from "./node_modules/@mdn/mdn-http-observatory/src/retriever/session.js";
import { parseHttpEquivHeaders } from "./node_modules/@mdn/mdn-http-observatory/src/retriever/utils.js";
import { ALL_TESTS } from "./node_modules/@mdn/mdn-http-observatory/src/constants.js";
import { MINIMUM_SCORE_FOR_EXTRA_CREDIT } from "./node_modules/@mdn/mdn-http-observatory/src/grader/charts.js";
import {
  getGradeForScore,
  getScoreModifier,
} from "./node_modules/@mdn/mdn-http-observatory/src/grader/grader.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const url = new URL(input.url);

const headers = new AxiosHeaders();
for (const [name, value] of input.headers) {
  const existing = headers.get(name);
  headers.set(name, existing ? `${existing}, ${value}` : value);
}

const req = new Requests(url.hostname);
req.resources.path = input.body ?? "";
const response = {
  headers,
  request: { headers: new AxiosHeaders() },
  status: input.status,
  statusText: "",
  verified: true,
  data: input.body ?? "",
  config: { headers: new AxiosHeaders() },
  httpEquiv: new Map(),
};
req.responses.auto = response;
req.responses.cors = response;
req.responses.http = response;
req.responses.https = response;
const host = url.host;
req.responses.httpRedirects = [
  { url: new URL(`http://${host}/`), status: 301 },
  { url: new URL(`https://${host}/`), status: 200 },
];
req.responses.httpsRedirects = [{ url: new URL(`https://${host}/`), status: 200 }];
req.session = new Session(new URL(`https://${host}/`));
if (req.resources.path && (headers.get("content-type") ?? "").toString().includes("html")) {
  response.httpEquiv = parseHttpEquivHeaders(req.resources.path, req.session.url.href);
}

let scoreWithExtraCredit = 100;
let uncurved = 100;
const tests = {};
for (const test of ALL_TESTS) {
  const result = test(req);
  const modifier = result.result ? getScoreModifier(result.result) : 0;
  scoreWithExtraCredit += modifier;
  if (modifier < 0) uncurved += modifier;
  tests[result.constructor.name] = { result: result.result, pass: result.pass, scoreModifier: modifier };
}
const score = uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? scoreWithExtraCredit : uncurved;
const final = getGradeForScore(score);
process.stdout.write(JSON.stringify({ score: final.score, grade: final.grade, tests }));
