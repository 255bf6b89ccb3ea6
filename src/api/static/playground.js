"use strict";
// The playground: calls POST /predict with explain=true and shows label, probabilities and why.
(function () {
  const form = document.getElementById("form");
  const text = document.getElementById("text");
  const submit = document.getElementById("submit");
  const error = document.getElementById("error");
  const result = document.getElementById("result");
  const keyRow = document.getElementById("key-row");
  const apiKey = document.getElementById("api-key");

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    result.hidden = true;
  }

  function describe(status, body) {
    const detail = body && body.detail;
    if (status === 401 || status === 403) {
      keyRow.hidden = false;
      return status === 401 ? "This service needs an API key: enter it above." : "That API key was not accepted.";
    }
    if (Array.isArray(detail) && detail.length) {
      const first = detail[0];
      if (first.type === "missing" || first.type === "string_too_short") return "Please type some text first.";
      return first.msg.replace(/^Value error, /, "");
    }
    if (typeof detail === "string") return detail;
    return "The service answered " + status + ".";
  }

  // Words as the model's tokenizer sees them: lower case, accents removed, runs of 2+ word characters.
  function normalise(word) {
    return word.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function highlight(container, source, terms) {
    const share = new Map();
    for (const term of terms) {
      if (!term.term.includes(" ")) share.set(term.term, term.contributions.positive ?? 0);
    }
    const largest = Math.max(1e-9, ...Array.from(share.values(), Math.abs));
    container.replaceChildren();
    let last = 0;
    for (const match of source.matchAll(/[\p{L}\p{N}_]{2,}/gu)) {
      container.append(source.slice(last, match.index));
      const value = share.get(normalise(match[0]));
      if (value) {
        const span = document.createElement("span");
        span.textContent = match[0];
        span.className = value > 0 ? "towards-positive" : "towards-negative";
        span.style.setProperty("--strength", (0.15 + 0.6 * Math.abs(value) / largest).toFixed(2));
        span.title = (value > 0 ? "towards positive: +" : "towards negative: ") + value.toFixed(3);
        container.append(span);
      } else {
        container.append(match[0]);
      }
      last = match.index + match[0].length;
    }
    container.append(source.slice(last));
  }

  function show(body, source) {
    document.getElementById("label").textContent = body.label;
    const bars = document.getElementById("bars");
    bars.replaceChildren();
    for (const [label, probability] of Object.entries(body.probabilities)) {
      const row = document.createElement("div");
      row.className = "bar";
      const name = document.createElement("span");
      name.textContent = label;
      const track = document.createElement("div");
      track.className = "track";
      track.setAttribute("role", "meter");
      track.setAttribute("aria-label", label + " probability");
      track.setAttribute("aria-valuemin", "0");
      track.setAttribute("aria-valuemax", "100");
      track.setAttribute("aria-valuenow", (probability * 100).toFixed(0));
      const fill = document.createElement("div");
      fill.className = "fill " + label;
      fill.style.width = (probability * 100).toFixed(1) + "%";
      track.append(fill);
      const value = document.createElement("span");
      value.textContent = (probability * 100).toFixed(1) + "%";
      row.append(name, track, value);
      bars.append(row);
    }
    highlight(document.getElementById("highlighted"), source, body.explanation ? body.explanation.terms : []);
    document.getElementById("version").textContent = body.model_version;
    error.hidden = true;
    result.hidden = false;
  }

  async function analyse(event) {
    event.preventDefault();
    const source = text.value;
    if (!source.trim()) {
      showError("Please type some text first.");
      text.focus();
      return;
    }
    submit.disabled = true;
    try {
      const headers = { "Content-Type": "application/json" };
      if (apiKey.value) headers["X-API-Key"] = apiKey.value;
      const response = await fetch("/predict", {
        method: "POST", headers, body: JSON.stringify({ text: source, explain: true }),
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) showError(describe(response.status, body));
      else show(body, source);
    } catch (failure) {
      showError("The service could not be reached: " + failure.message);
    } finally {
      submit.disabled = false;
    }
  }

  form.addEventListener("submit", analyse);
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
})();
