// The rating viewer: one image at a time on a canvas, keyboard first, no going back.
// Images arrive as raw pixels of a fixed byte length (16-bit LE grayscale or 8-bit RGB).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("viewer-config").textContent);
  var csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  var $ = function (id) { return document.getElementById(id); };
  var canvas = $("canvas"), ctx = canvas.getContext("2d");
  canvas.width = cfg.width; canvas.height = cfg.height;

  var state = null;          // the server's trial state
  var pixels = null;         // Float32Array of [0, 1] values, channels interleaved
  var answer = {};           // call / confidence / scale being composed
  var busy = false, paused = false, showingFeedback = false;
  var view = {window: 1, level: 0.5, scale: 1, x: 0, y: 0};
  var timerHandle = null, deadline = null;

  function setMessage(text) { $("message").textContent = text || ""; }

  function request(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin", cache: "no-store",
      headers: body ? {"Content-Type": "application/json", "X-CSRFToken": csrf} : {"X-CSRFToken": csrf},
      body: body ? JSON.stringify(body) : undefined,
    });
  }

  // Retry network failures with the same answer: the server stores it once.
  function withRetry(fn, attempts) {
    return fn().catch(function (err) {
      if (attempts <= 1) throw err;
      setMessage("Connection problem, retrying…");
      return new Promise(function (r) { setTimeout(r, 1500); }).then(function () { return withRetry(fn, attempts - 1); });
    });
  }

  function render() {
    if (!pixels) return;
    var img = ctx.createImageData(cfg.width, cfg.height), out = img.data;
    var lo = view.level - view.window / 2, w = view.window, n = cfg.width * cfg.height;
    for (var i = 0; i < n; i++) {
      for (var c = 0; c < 3; c++) {
        var v = cfg.channels === 1 ? pixels[i] : pixels[i * 3 + c];
        var d = (v - lo) / w;
        out[i * 4 + c] = d <= 0 ? 0 : d >= 1 ? 255 : Math.round(d * 255);
      }
      out[i * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    canvas.style.transform = "translate(" + view.x + "px," + view.y + "px) scale(" + view.scale + ")";
  }

  function resetView() { view = {window: 1, level: 0.5, scale: 1, x: 0, y: 0}; render(); }

  function decode(buffer) {
    var n = cfg.width * cfg.height * cfg.channels, out = new Float32Array(n);
    if (cfg.channels === 1) {
      var dv = new DataView(buffer);
      for (var i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true) / 65535;
    } else {
      var b = new Uint8Array(buffer);
      for (var j = 0; j < n; j++) out[j] = b[j] / 255;
    }
    return out;
  }

  function updateAnswerUi() {
    document.querySelectorAll(".choice").forEach(function (el) {
      var on = (el.dataset.call && el.dataset.call === answer.call) ||
        (el.dataset.confidence && el.dataset.confidence === String(answer.confidence)) ||
        (el.dataset.scale && el.dataset.scale === String(answer.scale));
      el.setAttribute("aria-pressed", on ? "true" : "false");
    });
    $("confirm-button").disabled = !complete() || busy;
  }

  function complete() {
    if (cfg.format === "six_point") return !!answer.scale;
    if (cfg.format === "binary_confidence") return !!answer.call && !!answer.confidence;
    return !!answer.call;
  }

  function showState(s) {
    state = s;
    if (s.closed) { $("viewer").hidden = true; $("closed").hidden = false; return Promise.resolve(); }
    if (s.done) { $("viewer").hidden = true; $("finished").hidden = false; return Promise.resolve(); }
    $("progress-text").textContent = "Image " + (s.answered + 1) + " of " + s.total;
    $("progress-bar").value = s.total ? s.answered / s.total : 0;
    $("block-label").hidden = !s.training;
    answer = {}; updateAnswerUi(); setMessage("");
    pixels = null; ctx.clearRect(0, 0, canvas.width, canvas.height);
    $("loading").hidden = false;
    return withRetry(function () {
      return fetch(cfg.imageUrl + s.token, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
        if (!r.ok) throw new Error("image " + r.status);
        return r.arrayBuffer();
      });
    }, 4).then(function (buffer) {
      pixels = decode(buffer);
      $("loading").hidden = true;
      resetView();
      startTimer(s.time_limit_s);
    });
  }

  function loadTrial() {
    return withRetry(function () {
      return request("GET", cfg.trialUrl).then(function (r) {
        if (!r.ok) throw new Error("trial " + r.status);
        return r.json();
      });
    }, 4).then(showState).catch(function () { setMessage("Could not reach the server. Reload the page to continue."); });
  }

  function startTimer(limit) {
    clearInterval(timerHandle);
    if (!limit) { $("timer").hidden = true; return; }
    deadline = Date.now() + limit * 1000;
    $("timer").hidden = false;
    timerHandle = setInterval(function () {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      $("timer").textContent = left + " s";
      // The server decides what is late; the client submits shortly after the limit.
      if (Date.now() > deadline + 2500) { clearInterval(timerHandle); submit(true); }
    }, 250);
  }

  function submit(timedOut) {
    if (busy || paused || !state || state.done) return;
    if (!timedOut && !complete()) { setMessage("Choose an answer first."); return; }
    busy = true; updateAnswerUi(); clearInterval(timerHandle);
    var body = {token: state.token, call: answer.call || null, confidence: answer.confidence || null, scale: answer.scale || null};
    withRetry(function () {
      return request("POST", cfg.answerUrl, body).then(function (r) {
        return r.json().then(function (data) { return {status: r.status, data: data}; });
      });
    }, 4).then(function (res) {
      busy = false;
      if (res.status === 409) { setMessage(res.data.error); return loadTrial(); }
      if (res.status !== 200) { setMessage(res.data.error || "The answer was not accepted."); updateAnswerUi(); return; }
      if (res.data.feedback) return showFeedback(res.data.feedback).then(function () { return showState(res.data); });
      return showState(res.data);
    }).catch(function () { busy = false; updateAnswerUi(); setMessage("Could not send the answer. Check the connection and press Enter again."); });
  }

  function showFeedback(fb) {
    showingFeedback = true;
    var box = $("feedback");
    box.className = "overlay-panel feedback " + (fb.correct ? "right" : "wrong");
    box.textContent = fb.timed_out ? "Time ran out. This image was " + fb.truth + "." :
      (fb.correct ? "Correct: " : "Not quite: ") + "this image was " + fb.truth + ". (Press any key)";
    box.hidden = false;
    return new Promise(function (resolve) {
      var done = function () { document.removeEventListener("keydown", done, true); box.hidden = true; showingFeedback = false; resolve(); };
      setTimeout(function () { document.addEventListener("keydown", done, true); }, 300);
      setTimeout(function () { if (showingFeedback) done(); }, 4000);
    });
  }

  function setPaused(on) {
    paused = on;
    $("paused-overlay").hidden = !on;
    canvas.style.visibility = on ? "hidden" : "visible";
    if (on) { clearInterval(timerHandle); request("POST", cfg.pauseUrl); }
    else { loadTrial(); }
  }

  document.addEventListener("keydown", function (e) {
    if ($("viewer").hidden || showingFeedback || e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key.toLowerCase();
    if (k === "p") { setPaused(!paused); e.preventDefault(); return; }
    // Keys pressed while an answer is in flight or an image loads would belong to no image.
    if (paused || busy || !pixels) return;
    if (k === "enter") { submit(false); e.preventDefault(); return; }
    if (k === "0") { resetView(); return; }
    if (cfg.format === "six_point") {
      if (k >= "1" && k <= "6") answer.scale = Number(k);
    } else {
      if (k === "r") answer.call = "real";
      if (k === "f") answer.call = "generated";
      if (cfg.format === "binary_confidence" && k >= "1" && k <= "5") answer.confidence = Number(k);
    }
    updateAnswerUi();
  });

  document.querySelectorAll(".choice").forEach(function (el) {
    el.addEventListener("click", function () {
      if (el.dataset.call) answer.call = el.dataset.call;
      if (el.dataset.confidence) answer.confidence = Number(el.dataset.confidence);
      if (el.dataset.scale) answer.scale = Number(el.dataset.scale);
      updateAnswerUi();
    });
  });
  $("confirm-button").addEventListener("click", function () { submit(false); });
  $("pause-button").addEventListener("click", function () { setPaused(true); });
  $("resume-button").addEventListener("click", function () { setPaused(false); });
  $("start-button").addEventListener("click", function () {
    $("intro").hidden = true; $("viewer").hidden = false; loadTrial();
  });
  // The page renders the button disabled: a click before this script has run would do nothing.
  $("start-button").disabled = false;

  // Window/level by dragging; shift-drag pans; the wheel zooms.
  var drag = null;
  canvas.addEventListener("mousedown", function (e) { drag = {x: e.clientX, y: e.clientY, view: Object.assign({}, view), pan: e.shiftKey}; e.preventDefault(); });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("mousemove", function (e) {
    if (!drag || paused) return;
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (drag.pan) {
      if (!cfg.zoom) return;
      view.x = drag.view.x + dx; view.y = drag.view.y + dy;
    } else {
      if (!cfg.windowLevel) return;
      view.window = Math.min(2, Math.max(0.02, drag.view.window * Math.exp(dx / 200)));
      view.level = Math.min(1.5, Math.max(-0.5, drag.view.level - dy / 400));
    }
    render();
  });
  canvas.addEventListener("wheel", function (e) {
    if (!cfg.zoom || paused) return;
    e.preventDefault();
    view.scale = Math.min(8, Math.max(1, view.scale * (e.deltaY < 0 ? 1.15 : 1 / 1.15)));
    if (view.scale === 1) { view.x = 0; view.y = 0; }
    render();
  }, {passive: false});
})();
