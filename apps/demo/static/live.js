// The live view: the camera in a <video> at its own rate, the latest results drawn on a canvas over it.
// Two engines per task: "this device" (the task's self-contained ONNX export in onnxruntime-web: only
// resize + normalise here, the decoding is in the graph) and "server" (a frame downscaled to the model's
// input goes to /mnet-live/infer when the previous answer is back; Result JSON comes back, never an image).
// Python's counterparts: mnet.weights.preprocess.Preprocess (to_array, box_frame) and mnet.tasks.decode.
(function () {
  "use strict";
  const API = "/mnet-live";
  const COLORS = { detection: "#00e060", classification: "#ffd400", dogs: "#ff8c00", face_attributes: "#ff4fa0" };

  // -- preprocessing (Preprocess.to_array / box_frame) ------------------------------------------------
  function centralCropBox(w, h, fraction) {
    const top = Math.trunc((h - h * fraction) / 2), left = Math.trunc((w - w * fraction) / 2);
    return [left, top, w - left, h - top];
  }
  // [x offset, y offset, x scale, y scale]: the network's [0, 1] coordinates → pixels of a w × h frame
  function boxFrame(pre, w, h) {
    if (pre.pad === "square") { const s = Math.max(w, h); return [0, 0, s, s]; }
    const [l, t, r, b] = centralCropBox(w, h, pre.crop_fraction);
    return [l, t, r - l, b - t];
  }
  function toTensorData(source, w, h, pre, canvas) {
    const res = pre.resolution;
    canvas.width = res; canvas.height = res;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = "medium";
    if (pre.pad === "square") {
      const s = Math.max(w, h);
      ctx.fillStyle = "#000"; ctx.fillRect(0, 0, res, res);
      ctx.drawImage(source, 0, 0, w, h, 0, 0, (w * res) / s, (h * res) / s);
    } else {
      const [l, t, r, b] = centralCropBox(w, h, pre.crop_fraction);
      ctx.drawImage(source, l, t, r - l, b - t, 0, 0, res, res);
    }
    const px = ctx.getImageData(0, 0, res, res).data, n = res * res, out = new Float32Array(3 * n);
    const bgr = pre.color_order === "BGR";
    for (let c = 0; c < 3; c++) {
      const src = bgr ? 2 - c : c, scale = 1 / pre.std[src], offset = -pre.mean[src] / pre.std[src], base = c * n;
      for (let i = 0; i < n; i++) out[base + i] = px[4 * i + src] * scale + offset;
    }
    return out;
  }

  // -- decoding left after the graph (mnet.tasks.decode: ranked, decode_boxes) ------------------------
  function ranked(probs, labels, k) {
    const idx = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]).slice(0, k);
    return idx.map((i) => ({ label: labels ? labels[i] : String(i), score: probs[i], index: i }));
  }
  function decodeBoxes(out, labels, frame, w, h, threshold) {
    const [ox, oy, sx, sy] = frame, b = out.boxes.data, s = out.scores.data, l = out.labels.data, boxes = [];
    const clip = (v, m) => Math.min(Math.max(v, 0), m);
    for (let i = 0; i < s.length; i++) {
      if (!(s[i] >= threshold)) continue;
      const cls = Number(l[i]);
      boxes.push({
        box: [clip(ox + b[4 * i] * sx, w), clip(oy + b[4 * i + 1] * sy, h), clip(ox + b[4 * i + 2] * sx, w), clip(oy + b[4 * i + 3] * sy, h)],
        label: labels ? labels[cls - 1] : String(cls), score: s[i], index: cls,
      });
    }
    return boxes;
  }

  // -- "this device": onnxruntime-web -----------------------------------------------------------------
  const sessions = {}; // model id → Promise<session>
  const PROXY = new URLSearchParams(location.search).get("proxy") !== "0";
  function ortSetup() {
    const ort = window.ort;
    if (!ort) throw new Error("onnxruntime-web did not load");
    ort.env.wasm.wasmPaths = new URL(API + "/ort/", location.href).href;
    ort.env.wasm.simd = true;
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    // run the model in a worker, so that the page's thread stays free to paint the video
    ort.env.wasm.proxy = PROXY;
    return ort;
  }
  function threadsText() {
    const n = window.ort ? window.ort.env.wasm.numThreads : 1;
    return self.crossOriginIsolated ? `${n} thread${n > 1 ? "s" : ""} (cross-origin isolated)` : "1 thread (page not cross-origin isolated)";
  }
  async function deviceSession(info) {
    if (!sessions[info.id]) {
      const ort = ortSetup();
      sessions[info.id] = ort.InferenceSession.create(info.url, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    }
    return sessions[info.id];
  }
  async function runDevice(info, source, w, h, threshold, canvas) {
    const ort = window.ort, session = await deviceSession(info), pre = info.preprocess, res = pre.resolution;
    const data = toTensorData(source, w, h, pre, canvas);
    const t0 = performance.now();
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor("float32", data, [1, 3, res, res]) });
    const ms = performance.now() - t0;
    if (out.finite && !Array.from(out.finite.data).every(Boolean)) throw new Error(`${info.model}: its outputs hold NaN/inf`);
    const r = { task: info.task, model: info.model, size: [w, h] };
    if (info.kind === "boxes") r.boxes = decodeBoxes(out, info.labels, boxFrame(pre, w, h), w, h, threshold);
    else r.classes = ranked(out.probs.data, info.labels, 5);
    return { result: r, ms };
  }

  // -- "server" ---------------------------------------------------------------------------------------
  async function runServer(tasks, infos, size, source, w, h, threshold, canvas) {
    const side = Math.max(...tasks.map((t) => infos[t].send_side));
    const s = Math.min(1, side / Math.max(w, h)), sw = Math.max(1, Math.round(w * s)), sh = Math.max(1, Math.round(h * s));
    canvas.width = sw; canvas.height = sh;
    canvas.getContext("2d").drawImage(source, 0, 0, w, h, 0, 0, sw, sh);
    const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.9));
    const q = new URLSearchParams({ tasks: tasks.join(","), size, threshold: String(threshold) });
    const t0 = performance.now();
    const resp = await fetch(`${API}/infer?${q}`, { method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" } });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.detail || resp.statusText);
    const ms = performance.now() - t0, fx = w / sw, fy = h / sh;
    const scale = (b) => [b[0] * fx, b[1] * fy, b[2] * fx, b[3] * fy];
    return body.results.map((r) => {
      if (r.boxes) r.boxes = r.boxes.map((b) => ({ ...b, box: scale(b.box) }));
      if (r.faces) r.faces = r.faces.map((f) => ({ ...f, box: scale(f.box) }));
      r.size = [w, h];
      return { result: r, ms, model_ms: body.model_ms };
    });
  }

  // -- drawing ----------------------------------------------------------------------------------------
  function label(ctx, text, x, y, color) {
    ctx.font = "bold 15px sans-serif";
    const w = ctx.measureText(text).width + 8;
    ctx.fillStyle = color; ctx.fillRect(x, y - 18, w, 18);
    ctx.fillStyle = "#000"; ctx.fillText(text, x + 4, y - 4);
  }
  function draw(ctx, latest, now) {
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    let panelY = 8;
    for (const [task, entry] of Object.entries(latest)) {
      const r = entry.result, color = COLORS[task] || "#00c0ff", age = Math.round(now - entry.at);
      ctx.lineWidth = 3; ctx.strokeStyle = color;
      for (const b of r.boxes || []) {
        ctx.strokeRect(b.box[0], b.box[1], b.box[2] - b.box[0], b.box[3] - b.box[1]);
        label(ctx, `${b.label} ${(b.score * 100).toFixed(0)}%`, b.box[0], Math.max(18, b.box[1]), color);
      }
      for (const f of r.faces || []) {
        ctx.strokeRect(f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]);
        const who = f.age != null ? `${Math.round(f.age)} ${f.gender}` : `face ${(f.score * 100).toFixed(0)}%`;
        const attrs = (f.attributes || []).slice(0, 3).map((a) => a.label).join(", ");
        label(ctx, who, f.box[0], Math.max(18, f.box[1]), color);
        if (attrs) label(ctx, attrs, f.box[0], f.box[3] + 18, color);
      }
      if (r.classes) {
        const lines = [`${task} · ${age} ms old`, ...r.classes.slice(0, 5).map((c) => `${(c.score * 100).toFixed(1)}% ${c.label}`)];
        ctx.font = "15px sans-serif";
        const w = Math.max(...lines.map((t) => ctx.measureText(t).width)) + 12;
        ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(8, panelY, w, lines.length * 19 + 6);
        ctx.fillStyle = color;
        lines.forEach((t, i) => ctx.fillText(t, 14, panelY + 19 * (i + 1)));
        panelY += lines.length * 19 + 14;
      } else {
        label(ctx, `${task} · ${age} ms old`, ctx.canvas.width - 190, ctx.canvas.height - 6, color);
      }
    }
  }

  // -- the controls Gradio owns (tasks, size, threshold), read from the page ----------------------------
  function readControls() {
    const tasks = [];
    document.querySelectorAll("#tasks-picker input[type=checkbox]").forEach((el) => {
      if (el.checked) tasks.push(el.closest("label").innerText.trim());
    });
    const size = (document.querySelector("#size-picker input") || {}).value || "";
    const thr = parseFloat((document.querySelector("#threshold-picker input[type=number]") || {}).value);
    return { tasks, size, threshold: Number.isFinite(thr) ? thr : 0.5 };
  }

  function rate(times, now, windowMs) {
    while (times.length && now - times[0] > windowMs) times.shift();
    return times.length > 1 ? ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]) : 0;
  }

  function mount(element) {
    const root = element.querySelector(".mnet-live");
    const video = root.querySelector("video"), overlay = root.querySelector("canvas.mnet-overlay");
    const status = root.querySelector(".mnet-status"), engineSel = root.querySelector(".mnet-engine");
    const startBtn = root.querySelector(".mnet-start");
    const work = document.createElement("canvas");
    try { ortSetup(); } catch (e) { /* the status line says so when a device task starts */ }
    const st = {
      running: false, latest: {}, infos: {}, paints: [], results: [], inferMs: {}, error: "",
      paintedFrames: 0, resultCount: 0, engines: {}, lastSeen: -1,
    };
    const api = (window.mnetLive = {
      state: st,
      stats() {
        const now = performance.now();
        return {
          videoFps: rate(st.paints, now, 3000), resultsPerSec: rate(st.results, now, 3000), inferMs: { ...st.inferMs },
          engines: { ...st.engines }, isolated: self.crossOriginIsolated, threads: threadsText(), paintedFrames: st.paintedFrames,
          resultCount: st.resultCount, error: st.error, latest: JSON.parse(JSON.stringify(Object.fromEntries(
            Object.entries(st.latest).map(([k, v]) => [k, v.result])))),
        };
      },
      // one image through the current engine (for checks): resolves to {task: Result}
      async inferImage(url, tasks, size, threshold, engine) {
        const img = new Image(); img.src = url; await img.decode();
        const out = {};
        for (const t of tasks) {
          const info = await modelInfo(t, size);
          const r = engine === "server"
            ? (await runServer([t], { [t]: info }, size, img, img.naturalWidth, img.naturalHeight, threshold, work))[0]
            : await runDevice(info, img, img.naturalWidth, img.naturalHeight, threshold, work);
          out[t] = r.result;
        }
        return out;
      },
    });

    async function modelInfo(task, size) {
      const key = `${task}@${size}`;
      if (!st.infos[key]) {
        st.infos[key] = fetch(`${API}/model?${new URLSearchParams({ task, size })}`).then(async (r) => {
          const body = await r.json();
          if (!r.ok) throw new Error(body.detail || r.statusText);
          return body;
        });
      }
      return st.infos[key];
    }
    function engineFor(info) {
      const want = engineSel.value;
      if (want === "server" || !info.device) return "server";
      return "device";
    }

    function paint(now) {
      st.paintedFrames++; st.paints.push(now);
      if (video.videoWidth && (overlay.width !== video.videoWidth || overlay.height !== video.videoHeight)) {
        overlay.width = video.videoWidth; overlay.height = video.videoHeight;
      }
      draw(overlay.getContext("2d"), st.latest, performance.now());
      if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(paint);
      else requestAnimationFrame(paint);
    }

    function showStatus() {
      const s = api.stats(), parts = [];
      for (const [task, info] of Object.entries(s.engines)) {
        const ms = s.inferMs[task];
        parts.push(`${task}: ${info.engine === "device" ? "this device" : "server"} · ${info.model} · ${info.mb.toFixed(1)} MB · ` +
          `inference ${ms == null ? "–" : ms.toFixed(0)} ms`);
      }
      status.textContent = `${parts.join("\n") || "no task chosen"}\n${s.resultsPerSec.toFixed(1)} results/s · video ` +
        `${s.videoFps.toFixed(1)} FPS · ${s.threads}${s.error ? "\nerror: " + s.error : ""}`;
    }

    async function loop() {
      while (st.running) {
        const { tasks, size, threshold } = readControls();
        try {
          if (!video.videoWidth || !tasks.length) { await new Promise((ok) => setTimeout(ok, 50)); continue; }
          // one result per camera frame at most: wait until the video shows a frame not yet looked at
          while (st.paintedFrames === st.lastSeen && st.running) await new Promise((ok) => setTimeout(ok, 4));
          st.lastSeen = st.paintedFrames;
          const w = video.videoWidth, h = video.videoHeight, at = performance.now();
          const infos = {};
          for (const t of tasks) infos[t] = await modelInfo(t, size);
          const byEngine = { device: [], server: [] };
          for (const t of tasks) byEngine[engineFor(infos[t])].push(t);
          // the frame is grabbed once; the device tasks read it from an ImageBitmap, the server gets it as JPEG
          const frame = await createImageBitmap(video);
          const jobs = [];
          if (byEngine.server.length) {
            jobs.push(runServer(byEngine.server, infos, size, frame, w, h, threshold, document.createElement("canvas"))
              .then((rs) => rs.forEach((r) => keep(r.result.task, r, infos, "server", at))));
          }
          for (const t of byEngine.device) {
            const r = await runDevice(infos[t], frame, w, h, threshold, work);
            keep(t, r, infos, "device", at);
          }
          await Promise.all(jobs);
          frame.close();
          for (const t of Object.keys(st.latest)) if (!tasks.includes(t)) { delete st.latest[t]; delete st.engines[t]; }
          st.results.push(performance.now()); st.resultCount++; st.error = "";
        } catch (e) {
          st.error = String(e && e.message ? e.message : e);
          await new Promise((ok) => setTimeout(ok, 500));
        }
        showStatus();
        await new Promise((ok) => setTimeout(ok, 0)); // yield: one-thread WASM runs on this thread
      }
    }
    function keep(task, r, infos, engine, at) {
      st.latest[task] = { result: r.result, at };
      st.inferMs[task] = r.ms;
      st.engines[task] = { engine, model: infos[task].model, mb: infos[task].size_mb };
    }

    async function start() {
      if (st.running) return;
      try {
        const stream = await navigator.mediaDevices.getUserMedia({
          video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "environment" }, audio: false,
        });
        video.srcObject = stream; await video.play();
      } catch (e) {
        status.textContent = `no camera: ${e.message || e} (browsers open the camera only over https or on localhost)`;
        return;
      }
      st.running = true; startBtn.textContent = "Camera on";
      if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(paint); else requestAnimationFrame(paint);
      loop();
    }
    startBtn.addEventListener("click", start);
    status.textContent = `Press "Start camera". ${threadsText()}`;
  }

  window.MnetLive = { mount, centralCropBox, boxFrame, ranked };
})();
