"use strict";
// The playground: calls POST /predict (or /models/NAME/predict, picked from GET /models when the
// server has several models) with explain=true and shows label, probabilities (or a scores
// model's decision scores) and why.
(function () {
  const form = document.getElementById("form");
  const text = document.getElementById("text");
  const submit = document.getElementById("submit");
  const error = document.getElementById("error");
  const result = document.getElementById("result");
  const keyRow = document.getElementById("key-row");
  const apiKey = document.getElementById("api-key");
  const modelRow = document.getElementById("model-row");
  const model = document.getElementById("model");
  let defaultModel = null;

  function headers() {
    const values = { "Content-Type": "application/json" };
    if (apiKey.value) values["X-API-Key"] = apiKey.value;
    return values;
  }

  // The picker appears only when the server serves more than one model (GET /models may need the key).
  async function loadModels() {
    const response = await fetch("/models", { headers: headers() }).catch(() => null);
    if (!response || !response.ok) return;
    const models = await response.json();
    defaultModel = (models.find((m) => m.default) || {}).name || null;
    if (models.length < 2) return;
    const chosen = model.value;
    model.replaceChildren();
    for (const entry of models) {
      const option = document.createElement("option");
      option.value = entry.name;
      option.textContent = entry.name + (entry.default ? " (default)" : "") + (entry.ready ? "" : " (not ready)");
      option.disabled = !entry.ready;
      option.selected = chosen ? entry.name === chosen : entry.default;
      model.append(option);
    }
    modelRow.hidden = false;
  }

  function predictUrl() {
    if (modelRow.hidden || !model.value || model.value === defaultModel) return "/predict";
    return "/models/" + encodeURIComponent(model.value) + "/predict";
  }

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

  // A binary model explains its second class's score (its first class is the other way); a model with
  // more classes shows what pushed towards, or away from, the predicted class.
  function highlight(container, source, terms, towards) {
    const share = new Map();
    for (const term of terms) {
      if (!term.term.includes(" ")) share.set(term.term, term.contributions[towards] ?? 0);
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
        span.title = (value > 0 ? "towards " + towards + ": +" : "away from " + towards + ": ") + value.toFixed(3);
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
    // A model without probabilities answers decision scores instead (one for a binary model, for its
    // second class): shown signed, the bar's length saturating at |score| = 3.
    const scored = !body.probabilities;
    const values = body.probabilities || body.scores;
    for (const [label, value] of Object.entries(values)) {
      const row = document.createElement("div");
      row.className = "bar";
      const name = document.createElement("span");
      name.textContent = scored ? label + " score" : label;
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      const share = scored ? Math.min(Math.abs(value), 3) / 3 : value;
      fill.className = "fill " + (scored && value < 0 ? "against" : label);
      fill.style.width = (share * 100).toFixed(1) + "%";
      if (!scored) {
        track.setAttribute("role", "meter");
        track.setAttribute("aria-label", label + " probability");
        track.setAttribute("aria-valuemin", "0");
        track.setAttribute("aria-valuemax", "100");
        track.setAttribute("aria-valuenow", (value * 100).toFixed(0));
      }
      track.append(fill);
      const shown = document.createElement("span");
      shown.textContent = scored ? (value >= 0 ? "+" : "") + value.toFixed(3) : (value * 100).toFixed(1) + "%";
      row.append(name, track, shown);
      bars.append(row);
    }
    const classes = Object.keys(values);
    const binaryScore = scored && classes.length === 1;
    const towards = binaryScore ? classes[0] : classes.length === 2 ? classes[1] : body.label;
    document.getElementById("towards").textContent = towards;
    document.getElementById("against").textContent =
      binaryScore ? "the other class" : classes.length === 2 ? classes[0] : "other classes";
    highlight(document.getElementById("highlighted"), source, body.explanation ? body.explanation.terms : [], towards);
    document.getElementById("model-name").textContent = modelRow.hidden ? defaultModel || "default" : model.value;
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
      if (defaultModel === null) await loadModels(); // again once a key has been entered
      const response = await fetch(predictUrl(), {
        method: "POST", headers: headers(), body: JSON.stringify({ text: source, explain: true }),
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
  loadModels();
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
})();
