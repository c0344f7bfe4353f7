(function () {
  "use strict";
  // Draws a result page's detail (system, runs, curves, power, account, compliance) from the
  // result file embedded in the page. The leaderboard has checked that file's checksum and the
  // type of every field read here; the generic tree tables accept any shape. Text only ever
  // reaches the page through textContent and setAttribute, never as markup, and links come
  // from the page data the leaderboard wrote, never from the result file.
  var DASH = "\u2014";
  var SVGNS = "http://www.w3.org/2000/svg";
  var MAX_ROWS = 400, MAX_DEPTH = 8, MAX_TEXT = 500, MAX_LABEL = 40, PALETTE = 10;
  var LABELS = {"measured": "measured", "estimated": "estimated", "declared": "declared",
                "partly estimated": "partly", "imported": "imported", "reference": "reference",
                "incomplete": "incomplete", "contended": "contended"};

  function data(id) { return JSON.parse(document.getElementById(id).textContent); }
  var doc = data("gp-result");
  var page = data("gp-page");

  // ---- numbers as people read them (the same rules as harness/leaderboard/fmt.py) ----
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function commas(text) {
    var parts = text.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }
  function sig(v, digits) {
    digits = digits || 3;
    if (v === 0) return "0";
    if (!isNum(v)) return DASH;
    if (Math.abs(v) >= Math.pow(10, digits - 1)) return commas(v.toFixed(0));
    var decimals = digits - 1 - Math.floor(Math.log10(Math.abs(v)));
    decimals = Math.min(Math.max(decimals, 0), 12);
    var text = commas(v.toFixed(decimals));
    return text.indexOf(".") >= 0 ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
  }
  var PREFIXES = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""], [1e-3, "m"],
                  [1e-6, "\u00b5"]];
  function scaled(v, unit) {
    if (v === 0 || !isNum(v)) return sig(v) + " " + unit;
    for (var i = 0; i < PREFIXES.length; i++) {
      if (Math.abs(v) >= PREFIXES[i][0]) return sig(v / PREFIXES[i][0]) + " " + PREFIXES[i][1] + unit;
    }
    return sig(v / 1e-6) + " \u00b5" + unit;
  }
  function seconds(v) { return isNum(v) ? sig(v) + " s" : DASH; }
  function count(v) {
    if (!isNum(v)) return DASH;
    return Number.isInteger(v) ? commas(v.toFixed(0)) : sig(v);
  }
  function g(v, precision) { return String(Number(v.toPrecision(precision))); }
  function short(v) {
    var units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(v) >= units[i][0]) return g(v / units[i][0], 3) + units[i][1];
    }
    return g(v, 3);
  }
  function clip(text, limit) {
    return text.length <= limit ? text : text.slice(0, limit - 1) + "\u2026";
  }
  function scalarText(v) {
    if (v === null || v === undefined) return DASH;
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return Math.abs(v) >= 10000 ? commas(String(v)) : String(v);
      return g(v, 6);
    }
    return clip(String(v), MAX_TEXT + 1);
  }

  // ---- DOM helpers ----
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) {
      if (attrs[key] !== null && attrs[key] !== undefined) node.setAttribute(key, attrs[key]);
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    });
    return node;
  }
  function tag(label) {
    if (!label) return null;
    return el("span", {"class": "tag tag-" + (LABELS[label] || "other")}, [String(label)]);
  }
  function empty(text) { return el("p", {"class": "empty"}, [text]); }
  function fill(id, nodes) {
    var target = document.getElementById(id);
    if (!target) return;
    target.textContent = "";
    nodes.forEach(function (n) { if (n) target.appendChild(n); });
  }
  function table(headers, rows, attrs) {
    var head = el("tr", {}, headers.map(function (h) {
      var numeric = typeof h === "object";
      var title = numeric ? h.title : h;
      var sortable = attrs && /\bsortable\b/.test(attrs["class"] || "");
      var content = sortable ? [el("button", {"type": "button"}, [title])] : [title];
      return el("th", numeric ? {"class": "num", "data-type": "num"} : {}, content);
    }));
    return el("div", {"class": "scroll"}, [el("table", attrs || {}, [
      el("thead", {}, [head]), el("tbody", {}, rows)])]);
  }
  function td(content, sortKey, numeric) {
    var attrs = {};
    if (numeric) attrs["class"] = "num";
    if (isNum(sortKey)) attrs["data-sort"] = String(sortKey);
    return el("td", attrs, Array.isArray(content) ? content : [content]);
  }
  function logLink(path) {
    var link = page.logs[path];
    if (link && link[0]) return el("a", {"href": link[0]}, [path]);
    var problem = link ? link[1] : "not copied";
    return el("span", {}, [path + " ", el("span", {"class": "sub"}, ["(" + problem + ")"])]);
  }
  function obj(v) { return v !== null && typeof v === "object" && !Array.isArray(v) ? v : {}; }
  function list(v) { return Array.isArray(v) ? v : []; }
  function strings(v) { return list(v).filter(function (s) { return typeof s === "string"; }); }

  // ---- any JSON value as (path, value, label, note) rows (as harness/leaderboard/tree.py) ----
  function readFigure(node) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return null;
    if (!("value" in node) || !("unit" in node)) return null;
    if (node.value !== null && !isNum(node.value)) return null;
    var notes = ["detail", "reason", "source"].filter(function (k) {
      return typeof node[k] === "string";
    }).map(function (k) { return node[k]; });
    return {value: node.value, unit: scalarText(node.unit),
            label: typeof node.label === "string" ? node.label : null,
            note: notes.length ? clip(notes.join("; "), MAX_TEXT + 1) : null};
  }
  function flatten(value) {
    var rows = [];
    function walk(v, path, depth) {
      if (rows.length >= MAX_ROWS) return;
      var figure = readFigure(v);
      if (figure) {
        rows.push([path, figure.value === null ? DASH : scalarText(figure.value) + " " +
                   figure.unit, figure.label, figure.note]);
        return;
      }
      var isList = Array.isArray(v), isObj = v !== null && typeof v === "object" && !isList;
      if (isObj && Object.keys(v).length && depth < MAX_DEPTH) {
        Object.keys(v).forEach(function (k) { walk(v[k], path ? path + "." + k : k, depth + 1); });
      } else if (isList && v.length && depth < MAX_DEPTH && !v.every(function (x) {
        return x === null || typeof x !== "object";
      })) {
        v.forEach(function (x, i) { walk(x, path + "[" + i + "]", depth + 1); });
      } else if (isList) {
        rows.push([path, clip(v.map(scalarText).join(", "), MAX_TEXT + 1) || DASH, null, null]);
      } else if (isObj) {
        rows.push([path, Object.keys(v).length ? "(nested too deeply)" : DASH, null, null]);
      } else {
        rows.push([path, scalarText(v), null, null]);
      }
    }
    if (value === null || value === undefined) return rows;
    if (typeof value === "object" && !Object.keys(value).length) return rows;
    walk(value, "", 0);
    if (rows.length >= MAX_ROWS) {
      rows = rows.slice(0, MAX_ROWS);
      rows.push(["\u2026", "more than " + MAX_ROWS + " fields; see the raw result JSON", null, null]);
    }
    return rows;
  }
  function treeTable(value, emptyText) {
    var rows = flatten(value);
    if (!rows.length) return empty(emptyText || DASH);
    var detailed = rows.some(function (r) { return r[2] || r[3]; });
    var headers = detailed ? ["Field", "Value", "Label", "Source / note"] : ["Field", "Value"];
    return el("table", {}, [el("thead", {}, [el("tr", {}, headers.map(function (h) {
      return el("th", {}, [h]);
    }))]), el("tbody", {}, rows.map(function (r) {
      var cells = [el("td", {}, [r[0]]), el("td", {}, [r[1]])];
      if (detailed) cells.push(el("td", {}, [tag(r[2])]), el("td", {"class": "sub"}, [r[3] || ""]));
      return el("tr", {}, cells);
    }))]);
  }

  // ---- small inline-SVG charts (as harness/leaderboard/svg.py) ----
  var WIDTH = 640, PLOT_HEIGHT = 300, LEFT = 64, RIGHT = WIDTH - 20, TOP = 30;
  var BOTTOM = TOP + PLOT_HEIGHT, MARGIN_BOTTOM = 46, LEGEND_ROW = 18, LEGEND_ITEM = 200;
  function s(tag, attrs, children) {
    var node = document.createElementNS(SVGNS, tag);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    (children || []).forEach(function (child) {
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    });
    return node;
  }
  function n1(v) { return v.toFixed(1); }
  function niceStep(raw) {
    var e = Math.floor(Math.log10(raw));
    var ms = [1, 2, 5, 10];
    for (var i = 0; i < ms.length; i++) if (raw <= ms[i] * Math.pow(10, e)) return ms[i] * Math.pow(10, e);
    return Math.pow(10, e + 1);
  }
  function axis(values, zero) {
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (hi === lo) { var pad = Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad; }
    var step = niceStep((hi - lo) / 5);
    var a = {lo: Math.floor(lo / step) * step, hi: Math.ceil(hi / step) * step};
    a.frac = function (v) { return (v - a.lo) / (a.hi - a.lo); };
    a.ticks = function () {
      var st = niceStep((a.hi - a.lo) / 5), start = Math.ceil(a.lo / st - 1e-9), out = [];
      for (var i = start; i < start + 12; i++) if (i * st <= a.hi + st * 1e-9) out.push(i * st);
      return out;
    };
    return a;
  }
  function chart(title, height) {
    return s("svg", {"class": "chart", "viewBox": "0 0 " + WIDTH + " " + height, "role": "img",
                     "aria-label": title}, [s("title", {}, [title])]);
  }
  function lines(series, title, xLabel, yLabel, target) {
    series = series.filter(function (x) { return x.points.length; });
    if (!series.length) return null;
    var xs = [], ys = target ? [target[0]] : [];
    series.forEach(function (x) { x.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var xa = axis(xs), ya = axis(ys);
    var legend = series.length > 1 ? series.map(function (x) { return x.name; }) : [];
    var perRow = Math.max(1, Math.floor((WIDTH - LEFT) / LEGEND_ITEM));
    var height = BOTTOM + MARGIN_BOTTOM + Math.ceil(legend.length / perRow) * LEGEND_ROW;
    var svg = chart(title, height);
    function px(v) { return LEFT + xa.frac(v) * (RIGHT - LEFT); }
    function py(v) { return BOTTOM - ya.frac(v) * (BOTTOM - TOP); }
    svg.appendChild(s("text", {"class": "chart-title", "x": LEFT, "y": 18}, [title]));
    xa.ticks().forEach(function (t) {
      var x = n1(px(t));
      svg.appendChild(s("line", {"class": "grid", "x1": x, "y1": TOP, "x2": x, "y2": BOTTOM}));
      svg.appendChild(s("text", {"class": "tick", "x": x, "y": BOTTOM + 16,
                                 "text-anchor": "middle"}, [short(t)]));
    });
    ya.ticks().forEach(function (t) {
      var y = n1(py(t));
      svg.appendChild(s("line", {"class": "grid", "x1": LEFT, "y1": y, "x2": RIGHT, "y2": y}));
      svg.appendChild(s("text", {"class": "tick", "x": LEFT - 6, "y": y, "text-anchor": "end",
                                 "dominant-baseline": "middle"}, [short(t)]));
    });
    svg.appendChild(s("rect", {"class": "frame", "x": LEFT, "y": TOP, "width": RIGHT - LEFT,
                               "height": BOTTOM - TOP}));
    svg.appendChild(s("text", {"class": "axis-label", "x": (LEFT + RIGHT) / 2, "y": BOTTOM + 36,
                               "text-anchor": "middle"}, [xLabel]));
    svg.appendChild(s("text", {"class": "axis-label", "text-anchor": "middle",
                               "transform": "translate(14 " + (TOP + BOTTOM) / 2 + ") rotate(-90)"},
                      [yLabel]));
    legend.forEach(function (name, i) {
      var x = LEFT + (i % perRow) * LEGEND_ITEM;
      var y = BOTTOM + MARGIN_BOTTOM + Math.floor(i / perRow) * LEGEND_ROW + 4;
      svg.appendChild(s("g", {"class": "legend"}, [
        s("rect", {"class": "swatch s" + (i % PALETTE), "x": x, "y": y - 9, "width": 12,
                   "height": 4}),
        s("text", {"x": x + 16, "y": y}, [clip(name, MAX_LABEL)])]));
    });
    if (target) {
      var ty = py(target[0]);
      svg.appendChild(s("line", {"class": "target", "x1": LEFT, "y1": n1(ty), "x2": RIGHT,
                                 "y2": n1(ty)}));
      svg.appendChild(s("text", {"class": "target-label", "x": RIGHT - 4, "y": n1(ty - 4),
                                 "text-anchor": "end"}, [target[1]]));
    }
    series.forEach(function (x, i) {
      var coords = x.points.map(function (p) { return [n1(px(p[0])), n1(py(p[1]))]; });
      var group = s("g", {"class": "series s" + (i % PALETTE)}, [s("title", {}, [x.name])]);
      if (coords.length > 1) {
        group.appendChild(s("polyline", {"class": "line", "points": coords.map(function (c) {
          return c.join(",");
        }).join(" ")}));
      }
      coords.forEach(function (c) {
        group.appendChild(s("circle", {"class": "point", "cx": c[0], "cy": c[1], "r": 3}));
      });
      svg.appendChild(group);
    });
    return svg;
  }
  function bars(items, title, xLabel) {
    if (!items.length) return null;
    var row = 22, labelWidth = 180, left = labelWidth + 8, right = RIGHT;
    var bottom = TOP + row * items.length;
    var a = axis(items.map(function (b) { return b.value; }), true);
    function px(v) { return left + a.frac(v) * (right - left); }
    var svg = chart(title, bottom + 40);
    svg.appendChild(s("text", {"class": "chart-title", "x": 8, "y": 18}, [title]));
    a.ticks().forEach(function (t) {
      var x = n1(px(t));
      svg.appendChild(s("line", {"class": "grid", "x1": x, "y1": TOP, "x2": x, "y2": bottom}));
      svg.appendChild(s("text", {"class": "tick", "x": x, "y": bottom + 14,
                                 "text-anchor": "middle"}, [short(t)]));
    });
    items.forEach(function (b, i) {
      var y = TOP + i * row, x0 = px(0), x1 = px(b.value);
      svg.appendChild(s("text", {"class": "bar-label", "x": labelWidth, "y": y + row / 2,
                                 "text-anchor": "end", "dominant-baseline": "middle"},
                        [clip(b.label, MAX_LABEL)]));
      svg.appendChild(s("rect", {"class": "bar point", "x": n1(Math.min(x0, x1)), "y": y + 3,
                                 "width": n1(Math.abs(x1 - x0)), "height": row - 6},
                        [s("title", {}, [b.tip])]));
      svg.appendChild(s("text", {"class": "bar-value", "x": n1(Math.max(x0, x1) + 4),
                                 "y": y + row / 2, "dominant-baseline": "middle"}, [short(b.value)]));
    });
    svg.appendChild(s("text", {"class": "axis-label", "x": (left + right) / 2, "y": bottom + 32,
                               "text-anchor": "middle"}, [xLabel]));
    return svg;
  }
  function figure(svg, emptyText) { return el("figure", {}, [svg || empty(emptyText)]); }

  // ---- the sections ----
  function runName(run) { return "run " + run.index + " (seed " + run.seed + ")"; }

  function runsTable(phase, number) {
    var headers = [{title: "Run"}, {title: "Seed"}, "Status", {title: "TTA"},
                   {title: "Samples to target"}, {title: "Epochs"}, {title: "Throughput"},
                   {title: "Peak memory"}, {title: "Energy"}, {title: "Foreign cores"}, "MLLOG log"];
    var rows = list(phase.runs).map(function (run) {
      var ok = run.status === "success";
      var status = [el("span", {"class": ok ? "ok" : "fail"}, [String(run.status)])];
      if (!ok && run.abort_reason) status.push(el("div", {"class": "sub"}, [String(run.abort_reason)]));
      var memory = scaled(run.peak_rss_bytes, "B") + " RSS";
      if (isNum(run.cuda_max_allocated_bytes)) {
        memory += ", " + scaled(run.cuda_max_allocated_bytes, "B") + " CUDA";
      }
      var energy = obj(run.energy), joules = isNum(energy.total_joules) ? energy.total_joules : null;
      var contention = obj(run.contention);
      var foreign = isNum(contention.foreign_cores) ? contention.foreign_cores : null;
      return el("tr", {}, [
        td(String(run.index), run.index, true), td(String(run.seed), run.seed, true),
        td(status), td(seconds(run.tta_seconds), run.tta_seconds, true),
        td(count(run.samples_to_target), run.samples_to_target, true),
        td(sig(run.epochs), run.epochs, true),
        td(sig(run.train_throughput) + " samples/s", run.train_throughput, true),
        td(memory, run.peak_rss_bytes, true),
        td([joules === null ? DASH : scaled(joules, "J"),
            joules === null ? null : tag(energy.label || "estimated")], joules, true),
        td([foreign === null ? DASH : foreign.toFixed(2), contention.contended ?
            el("span", {"class": "badge badge-contended"}, ["contended"]) : null], foreign, true),
        td(logLink(obj(run.log).path))]);
    });
    return table(headers, rows, {"class": "sortable runs", "id": "runs-" + number});
  }

  function phasePlots(phase) {
    var runs = list(phase.runs);
    var target = [phase.target, "target " + sig(phase.target)];
    function curve(run, x) {
      return list(run.eval_curve).filter(function (p) { return isNum(p.metric); }).map(function (p) {
        return [p[x], p.metric];
      });
    }
    var byTime = runs.map(function (r) { return {name: runName(r), points: curve(r, "seconds")}; });
    var bySamples = runs.map(function (r) { return {name: runName(r), points: curve(r, "samples")}; });
    var traces = [], energies = [];
    runs.forEach(function (run) {
      var energy = obj(run.energy);
      list(energy.readings).map(obj).forEach(function (reading) {
        var points = list(reading.power_trace).filter(function (p) {
          return Array.isArray(p) && isNum(p[0]) && isNum(p[1]);
        });
        if (points.length) {
          traces.push({name: "run " + run.index + " " + (reading.component || "?") + " (" +
                       (reading.label || "unlabelled") + ")", points: points});
        }
      });
      if (isNum(energy.total_joules)) {
        energies.push({label: runName(run), value: energy.total_joules,
                       tip: runName(run) + ": " + scaled(energy.total_joules, "J") + " (" +
                            (energy.label || "unlabelled") + ")"});
      }
    });
    var noEval = "No evaluation reached a metric value.";
    return el("div", {"class": "plots"}, [
      figure(lines(byTime, phase.metric + " vs time (" + phase.name + ")",
                   "seconds since run_start", phase.metric, target), noEval),
      figure(lines(bySamples, phase.metric + " vs samples (" + phase.name + ")", "samples seen",
                   phase.metric, target), noEval),
      figure(lines(traces, "Power over time (" + phase.name + ")", "seconds into the run window",
                   "power (W)"), "No power trace recorded (energy not measured, or no meter " +
                   "sampled power)."),
      figure(bars(energies, "Energy per run (" + phase.name + ")", "energy (J)"),
             "No energy figure for any run.")]);
  }

  function readingsTable(phase) {
    var rows = [];
    list(phase.runs).forEach(function (run) {
      list(obj(run.energy).readings).map(obj).forEach(function (r) {
        rows.push(el("tr", {}, [
          el("td", {}, [String(run.index)]), el("td", {}, [r.component || "?"]),
          el("td", {}, [r.source || ""]), el("td", {}, [tag(r.label || "unlabelled")]),
          el("td", {"class": "num"}, [isNum(r.joules) ? scaled(r.joules, "J") : DASH]),
          el("td", {"class": "sub"}, [r.formula || ""].concat(strings(r.notes).map(function (t) {
            return el("div", {}, [t]);
          })))]));
      });
    });
    if (!rows.length) return [];
    return [el("h3", {}, ["Energy readings"]), table(["Run", "Component", "Source", "Label",
                                                      {title: "Energy"}, "Formula and notes"], rows)];
  }

  function phaseSection(phase, number) {
    var dataset = obj(phase.dataset);
    return el("section", {"class": "card", "id": "phase-" + number}, [
      el("h2", {}, ["Phase " + phase.name + ": " + phase.metric + " \u2265 " + phase.target]),
      el("p", {"class": "meta"}, ["Dataset " + (dataset.name || "") + ": " +
        count(dataset.train_samples) + " training and " + count(dataset.eval_samples) +
        " evaluation samples, " + count(dataset.nbytes) + " bytes."]),
      el("details", {}, [el("summary", {}, ["Recipe"]), treeTable(phase.recipe)]),
      el("h3", {}, ["Runs"]), runsTable(phase, number), phasePlots(phase)
    ].concat(readingsTable(phase)));
  }

  function accountSettings(account) {
    var shown = {devices: account.devices === undefined ? null : account.devices};
    var settings = obj(account.settings);
    Object.keys(settings).forEach(function (k) { if (k !== "prices") shown[k] = settings[k]; });
    if (settings.prices && typeof settings.prices === "object") {
      shown.prices = {origins: settings.prices.origins === undefined ? null : settings.prices.origins,
                      entries: "every price with its source and date is in the raw result JSON " +
                               "(sustainability.settings.prices)"};
    }
    return treeTable(shown);
  }

  function findingsSection(findings) {
    if (!findings.length) return [empty("No compliance findings recorded.")];
    var failed = findings.filter(function (f) { return !f.passed; }).length;
    var rows = findings.map(function (f) {
      return el("tr", {}, [
        el("td", {}, [logLink(f.log || "")]), el("td", {}, [f.phase || DASH]),
        el("td", {}, [f.run === null || f.run === undefined ? DASH : String(f.run)]),
        el("td", {}, [f.ruleset || ""]),
        el("td", {}, [el("span", {"class": f.passed ? "ok" : "fail"}, [f.passed ? "passed" : "failed"])]),
        el("td", {"class": "sub"}, strings(f.messages).map(function (m) { return el("div", {}, [m]); }))]);
    });
    return [el("p", {"class": "meta"}, [findings.length + " finding" + (findings.length === 1 ? "" : "s") +
              " from the official MLCommons compliance checker; " + failed + " failed."]),
            table(["Log", "Phase", "Run", "Ruleset", "Result", "Messages"], rows)];
  }

  var system = obj(doc.system);
  fill("system-auto", [treeTable(system.auto)]);
  fill("system-declared", [treeTable(system.declared, "Nothing declared.")]);
  fill("software", [treeTable(doc.software)]);
  fill("phases", list(doc.phases).map(function (p, i) { return phaseSection(p, i + 1); }));
  var account = doc.sustainability;
  if (account && typeof account === "object") {
    var figures = {};
    Object.keys(account).forEach(function (k) {
      if (page.account_settings.indexOf(k) < 0) figures[k] = account[k];
    });
    fill("account", [treeTable(figures), el("details", {}, [
      el("summary", {}, ["How it was computed: region, prices, devices"]), accountSettings(account)])]);
  } else {
    fill("account", [empty("\u2014 This result carries no sustainability account.")]);
  }
  var meterNotes = strings(obj(doc.energy_meters).notes);
  fill("meter-notes", meterNotes.length ? [el("h3", {}, ["Energy meter notes"]), el("ul", {"class": "notes"},
    meterNotes.map(function (t) { return el("li", {}, [t]); }))] : []);
  fill("compliance-findings", findingsSection(list(obj(doc.compliance).findings)));
})();
