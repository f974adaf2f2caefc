/* segsync — Data pages: the segment builder with its estimated size, the export form's
   extra rows and live selection counts, and the run page's live progress. Every page works
   without this file (the builder's textarea, the form's spare rows, a Refresh link). */
(function () {
  "use strict";

  var uid = 0;
  function nextId(prefix) { uid += 1; return prefix + "-" + uid; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; }
      else if (key === "className") { node.className = attrs[key]; }
      else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  /* A labelled control: <span class="bfield"><label for=id>text</label>control</span>. */
  function labelled(text, control, hideLabel) {
    var id = nextId("b");
    control.id = id;
    var label = el("label", { "for": id, text: text, className: hideLabel ? "visually-hidden" : "" });
    return el("span", { className: "bfield" }, [label, control]);
  }

  function select(options, value) {
    var node = el("select");
    options.forEach(function (opt) {
      var o = el("option", { value: opt[0], text: opt[1] });
      if (opt.length > 2 && opt[2]) { o.disabled = true; }
      node.appendChild(o);
    });
    if (value !== undefined && value !== null) { node.value = value; }
    return node;
  }

  function button(text, handler, className) {
    var b = el("button", { type: "button", text: text, className: className || "", id: nextId("b") });
    b.addEventListener("click", function (event) { event.preventDefault(); handler(); });
    return b;
  }

  function csrfOf(form) {
    var field = form.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  /* ------------------------------------------------------------------ segment builder */

  function Builder(form) {
    this.form = form;
    this.schema = JSON.parse(form.getAttribute("data-schema") || "{}");
    this.vocab = this.schema.vocabulary || {};
    this.textarea = form.querySelector("textarea[name=definition]");
    this.root = form.querySelector("#builder");
    this.countOut = document.getElementById("estimate-count");
    this.errorsOut = document.getElementById("estimate-errors");
    this.timer = null;
    this.seq = 0;
    var profile = null;
    (this.schema.tables || []).forEach(function (t) { if (t.is_profile) { profile = t; } });
    this.profile = profile;
  }

  Builder.prototype.table = function (name) {
    var found = null;
    (this.schema.tables || []).forEach(function (t) { if (t.name === name) { found = t; } });
    return found;
  };

  /* Attributes a condition of a rule may use: the profile's, and the related table's. */
  Builder.prototype.attributes = function (related) {
    var list = [];
    if (this.profile) {
      this.profile.attributes.forEach(function (a) { list.push([a.name, a.type]); });
    }
    var rel = related ? this.table(related) : null;
    if (rel) {
      rel.attributes.forEach(function (a) { list.push([related + "." + a.name, a.type]); });
    }
    return list;
  };

  Builder.prototype.typeOf = function (attribute, related) {
    var kind = "text";
    this.attributes(related).forEach(function (a) { if (a[0] === attribute) { kind = a[1]; } });
    return kind;
  };

  Builder.prototype.relatedTables = function () {
    var profileName = this.profile ? this.profile.name : null;
    var names = [];
    (this.schema.relationships || []).forEach(function (r) {
      var child = r.child.split(".")[0];
      var parent = r.parent.split(".")[0];
      if (parent === profileName && names.indexOf(child) < 0) { names.push(child); }
      if (child === profileName && names.indexOf(parent) < 0) { names.push(parent); }
    });
    return names;
  };

  Builder.prototype.start = function () {
    var initial = null;
    var text = this.textarea.value.trim();
    var data = this.form.getAttribute("data-initial");
    try { initial = data ? JSON.parse(data) : (text ? JSON.parse(text) : null); } catch (e) { initial = null; }
    if (text && !initial) {
      this.root.appendChild(el("p", { className: "hint", text: "This definition is edited as text below (the builder reads JSON)." }));
      this.root.hidden = false;
      this.schedule();
      return;
    }
    this.model = initial || { name: "", rules: [{ conditions: { all: [] } }] };
    this.render();
    var self = this;
    this.textarea.addEventListener("input", function () {
      try {
        var parsed = JSON.parse(self.textarea.value);
        if (parsed && parsed.rules) { self.model = parsed; self.render(true); }
      } catch (e) { /* YAML or half-typed: estimate the text as it is */ }
      self.schedule();
    });
    this.sync();
  };

  /* Leave out empty nested groups, and the empty conditions of a related rule (it may rely on
     its aggregates alone), so what is written is what the user meant. */
  function pruneGroup(group) {
    var mode = group.any ? "any" : "all";
    var items = (group[mode] || []).map(function (item) {
      return (item.all || item.any) ? pruneGroup(item) : item;
    }).filter(function (item) { return item !== null; });
    if (!items.length) { return null; }
    var out = {}; out[mode] = items; return out;
  }

  function pruned(model) {
    var copy = JSON.parse(JSON.stringify(model));
    (copy.rules || []).forEach(function (rule) {
      ["conditions", "having"].forEach(function (key) {
        if (!rule[key]) { return; }
        var kept = pruneGroup(rule[key]);
        if (kept) { rule[key] = kept; }
        else if (rule.related || key === "having") { delete rule[key]; }
        else { rule[key] = { all: [] }; }
      });
    });
    return copy;
  }

  Builder.prototype.sync = function () {
    this.textarea.value = JSON.stringify(pruned(this.model), null, 2);
    this.schedule();
  };

  Builder.prototype.schedule = function () {
    var self = this;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(function () { self.estimate(); }, 400);
  };

  Builder.prototype.estimate = function () {
    var self = this;
    var seq = ++this.seq;
    this.countOut.textContent = "estimating…";
    fetch(this.form.getAttribute("data-estimate-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfOf(this.form) },
      body: JSON.stringify({ definition: this.textarea.value })
    }).then(function (r) { return r.json(); }).then(function (result) {
      if (seq !== self.seq) { return; }
      self.errorsOut.textContent = "";
      if (result.ok) {
        self.countOut.textContent = Number(result.count).toLocaleString() + " profiles";
      } else {
        self.countOut.textContent = "cannot estimate yet";
        (result.errors || []).forEach(function (e) {
          var item = el("li");
          if (e.path) { item.appendChild(el("code", { text: e.path })); item.appendChild(document.createTextNode(": ")); }
          item.appendChild(document.createTextNode(e.message || e.detail || ""));
          self.errorsOut.appendChild(item);
        });
      }
    }).catch(function () {
      if (seq === self.seq) { self.countOut.textContent = "could not reach segsync"; }
    });
  };

  Builder.prototype.render = function (keepText) {
    var self = this;
    var focusId = document.activeElement && document.activeElement.id;
    uid = 0;  /* the same control gets the same id after a re-render: focus stays put */
    this.root.textContent = "";
    this.root.hidden = false;
    var m = this.model;
    var name = el("input", { type: "text", maxlength: "200" });
    name.value = m.name || "";
    name.addEventListener("input", function () { m.name = name.value; self.sync(); });
    var desc = el("input", { type: "text", maxlength: "500" });
    desc.value = m.description || "";
    desc.addEventListener("input", function () {
      if (desc.value) { m.description = desc.value; } else { delete m.description; }
      self.sync();
    });
    this.root.appendChild(el("div", { className: "builder-head" }, [
      labelled("Segment name", name), labelled("Description (optional)", desc)
    ]));
    var rules = el("ol", { className: "rules" });
    (m.rules || []).forEach(function (rule, index) { rules.appendChild(self.ruleNode(rule, index)); });
    this.root.appendChild(rules);
    this.root.appendChild(button("Add rule", function () {
      m.rules.push({ combine: "union", conditions: { all: [] } });
      self.render(); self.sync();
    }));
    if (!keepText) { this.sync(); }
    if (focusId && document.getElementById(focusId)) { document.getElementById(focusId).focus(); }
  };

  Builder.prototype.ruleNode = function (rule, index) {
    var self = this;
    var m = this.model;
    var box = el("fieldset", { className: "rule" }, [el("legend", { text: "Rule " + (index + 1) })]);
    var head = el("div", { className: "rule-head" });
    if (index > 0) {
      var combine = select((this.vocab.combine || []).map(function (c) { return [c, c.charAt(0).toUpperCase() + c.slice(1)]; }), rule.combine || "union");
      combine.addEventListener("change", function () { rule.combine = combine.value; self.sync(); });
      head.appendChild(labelled("Combine with the rules before", combine));
    }
    var tables = [["", "Profiles"]].concat(this.relatedTables().map(function (t) { return [t, "Related: " + t]; }));
    var over = select(tables, rule.related || "");
    over.addEventListener("change", function () {
      if (over.value) { rule.related = over.value; } else { delete rule.related; delete rule.having; }
      self.render(); self.sync();
    });
    head.appendChild(labelled("Rule over", over));
    if (m.rules.length > 1) {
      head.appendChild(button("Remove rule", function () {
        m.rules.splice(index, 1);
        if (m.rules.length && m.rules[0].combine) { delete m.rules[0].combine; }
        self.render(); self.sync();
      }, "danger"));
    }
    box.appendChild(head);
    if (!rule.conditions) { rule.conditions = { all: [] }; }
    box.appendChild(this.groupNode(rule.conditions, rule, null, "Conditions"));
    if (rule.related) {
      if (rule.having) {
        box.appendChild(this.groupNode(rule.having, rule, null, "Having (aggregates of the matching " + rule.related + " rows)", true));
        box.appendChild(button("Remove aggregates", function () { delete rule.having; self.render(); self.sync(); }));
      } else {
        box.appendChild(button("Add aggregates (having)", function () {
          rule.having = { all: [{ aggregate: "count", op: "greater_or_equal", value: 1 }] };
          self.render(); self.sync();
        }));
      }
    }
    return box;
  };

  /* A group {all: [...]} or {any: [...]}; nested groups and conditions. */
  Builder.prototype.groupNode = function (group, rule, remove, title, having) {
    var self = this;
    var mode = group.any ? "any" : "all";
    var items = group[mode] || [];
    var box = el("fieldset", { className: "group" }, [el("legend", { text: title })]);
    var joiner = select([["all", "Match all (AND)"], ["any", "Match any (OR)"]], mode);
    joiner.addEventListener("change", function () {
      var list = group[mode] || [];
      delete group[mode];
      group[joiner.value] = list;
      self.render(); self.sync();
    });
    var head = el("div", { className: "group-head" }, [labelled("Combine these conditions", joiner)]);
    if (remove) { head.appendChild(button("Remove group", remove, "danger")); }
    box.appendChild(head);
    var list = el("ul", { className: "conditions" });
    items.forEach(function (item, i) {
      var drop = function () { items.splice(i, 1); self.render(); self.sync(); };
      var node;
      if (item.all || item.any) {
        node = self.groupNode(item, rule, drop, "Group", having);
      } else if (having) {
        node = self.aggregateNode(item, rule, drop);
      } else {
        node = self.conditionNode(item, rule, drop);
      }
      list.appendChild(el("li", {}, [node]));
    });
    box.appendChild(list);
    var add = having
      ? button("Add aggregate", function () { items.push({ aggregate: "count", op: "greater_or_equal", value: 1 }); self.render(); self.sync(); })
      : button("Add condition", function () {
          var all = self.attributes(rule.related);
          var first = all.filter(function (a) { return a[1] === "text"; })[0] || all[0];
          var attr = first ? first[0] : "";
          var type = first ? first[1] : "text";
          items.push({ attribute: attr, op: (self.vocab.ops_by_type[type] || ["equals"])[0], value: "" });
          self.render(); self.sync();
        });
    box.appendChild(el("div", { className: "actions" }, [
      add, button("Add group", function () { items.push({ all: [] }); self.render(); self.sync(); })
    ]));
    return box;
  };

  Builder.prototype.conditionNode = function (cond, rule, drop) {
    var self = this;
    var attrs = this.attributes(rule.related);
    var attr = select(attrs.map(function (a) { return [a[0], a[0] + " (" + a[1] + ")"]; }), cond.attribute);
    var type = this.typeOf(cond.attribute, rule.related);
    var ops = this.vocab.ops_by_type[type] || [];
    if (ops.indexOf(cond.op) < 0) { cond.op = ops[0]; }
    var op = select(ops.map(function (o) { return [o, self.vocab.operators[o].label]; }), cond.op);
    attr.addEventListener("change", function () {
      cond.attribute = attr.value;
      var t = self.typeOf(attr.value, rule.related);
      var allowed = self.vocab.ops_by_type[t] || [];
      if (allowed.indexOf(cond.op) < 0) { cond.op = allowed[0]; cond.value = ""; }
      self.render(); self.sync();
    });
    op.addEventListener("change", function () { cond.op = op.value; cond.value = ""; self.render(); self.sync(); });
    var row = el("div", { className: "condition" }, [
      labelled("Attribute", attr, true), labelled("Operator", op, true)
    ]);
    this.valueInputs(row, cond, type);
    row.appendChild(button("Remove", drop, "danger"));
    return row;
  };

  Builder.prototype.aggregateNode = function (cond, rule, drop) {
    var self = this;
    var aggs = Object.keys(this.vocab.aggregates || {});
    var agg = select(aggs.map(function (a) { return [a, a]; }), cond.aggregate);
    var relAttrs = this.attributes(rule.related).filter(function (a) { return a[0].indexOf(rule.related + ".") === 0; });
    var accepts = this.vocab.aggregates[cond.aggregate] || [];
    var choices = relAttrs.filter(function (a) { return accepts.indexOf(a[1]) >= 0; })
      .map(function (a) { return [a[0], a[0] + " (" + a[1] + ")"]; });
    if (cond.aggregate === "count") { choices.unshift(["", "rows"]); }
    var attr = select(choices, cond.attribute || "");
    if (!cond.attribute && cond.aggregate !== "count" && choices.length) { cond.attribute = choices[0][0]; }
    var inputType = "number";
    if (cond.attribute) { inputType = this.typeOf(cond.attribute, rule.related); }
    var resultType = this.vocab.aggregate_result[cond.aggregate] === "same" ? inputType : "number";
    var ops = this.vocab.having_ops_by_type[resultType] || [];
    if (ops.indexOf(cond.op) < 0) { cond.op = ops[0]; }
    var op = select(ops.map(function (o) { return [o, self.vocab.operators[o].label]; }), cond.op);
    agg.addEventListener("change", function () { cond.aggregate = agg.value; delete cond.attribute; self.render(); self.sync(); });
    attr.addEventListener("change", function () {
      if (attr.value) { cond.attribute = attr.value; } else { delete cond.attribute; }
      self.render(); self.sync();
    });
    op.addEventListener("change", function () { cond.op = op.value; cond.value = ""; self.render(); self.sync(); });
    var row = el("div", { className: "condition" }, [
      labelled("Aggregate", agg, true), labelled("Of", attr, true), labelled("Operator", op, true)
    ]);
    this.valueInputs(row, cond, resultType);
    row.appendChild(button("Remove", drop, "danger"));
    return row;
  };

  function typed(text, type) {
    if (type === "number") { var n = Number(text); return text === "" || isNaN(n) ? text : n; }
    return text;
  }

  /* The value control(s) the operator takes: none, one, a list, a pair, or a period. */
  Builder.prototype.valueInputs = function (row, cond, type) {
    var self = this;
    var shape = (this.vocab.operators[cond.op] || {}).value || "scalar";
    var inputType = type === "number" ? "number" : (type === "date" ? "date" : "text");
    function input(value, label, kind) {
      var node = el("input", { type: kind || inputType, step: "any" });
      node.value = value === undefined || value === null ? "" : value;
      row.appendChild(labelled(label, node, true));
      return node;
    }
    if (shape === "none") { delete cond.value; return; }
    if (shape === "scalar") {
      var one = input(cond.value, "Value");
      one.addEventListener("input", function () { cond.value = typed(one.value, type); self.sync(); });
    } else if (shape === "list") {
      var current = Array.isArray(cond.value) ? cond.value.join(", ") : (cond.value || "");
      var many = input(current, "Values, separated by commas", "text");
      many.addEventListener("input", function () {
        cond.value = many.value.split(",").map(function (v) { return typed(v.trim(), type); })
          .filter(function (v) { return v !== ""; });
        self.sync();
      });
    } else if (shape === "pair") {
      var pair = Array.isArray(cond.value) ? cond.value : ["", ""];
      var low = input(pair[0], "From");
      var high = input(pair[1], "To (inclusive)");
      var update = function () { cond.value = [typed(low.value, type), typed(high.value, type)]; self.sync(); };
      low.addEventListener("input", update);
      high.addEventListener("input", update);
    } else if (shape === "period") {
      var period = cond.value && typeof cond.value === "object" ? cond.value : { days: 30 };
      var unit = Object.keys(period)[0] || "days";
      var amount = input(period[unit], "Amount", "number");
      var units = select((this.vocab.period_units || ["days"]).map(function (u) { return [u, u]; }), unit);
      row.appendChild(labelled("Unit", units, true));
      var set = function () {
        var v = {}; v[units.value] = Number(amount.value) || 0; cond.value = v; self.sync();
      };
      amount.addEventListener("input", set);
      units.addEventListener("change", set);
      if (!cond.value || typeof cond.value !== "object") { cond.value = period; }
    }
  };

  /* ------------------------------------------------------------------ export form */

  function exportForm(form) {
    var more = form.querySelector("#more-fields");
    var addRow = form.querySelector("[data-add-map-row]");
    function toggleCustom(row) {
      var target = row.querySelector("select[name=map_target]");
      var custom = row.querySelector("input[name=map_custom]");
      var wrap = custom.closest(".field");
      wrap.hidden = target.value.indexOf("custom:") !== 0;
    }
    form.querySelectorAll("[data-map-row]").forEach(toggleCustom);
    form.addEventListener("change", function (event) {
      var row = event.target.closest && event.target.closest("[data-map-row]");
      if (row) { toggleCustom(row); }
    });
    if (addRow && more) {
      addRow.addEventListener("click", function () {
        var rows = more.querySelectorAll("[data-map-row]");
        var copy = rows[rows.length - 1].cloneNode(true);
        copy.querySelectorAll("select, input").forEach(function (field) {
          var id = nextId("map");
          var label = copy.querySelector("label[for='" + field.id + "']");
          if (label) { label.setAttribute("for", id); }
          field.id = id;
          field.value = "";
        });
        more.insertBefore(copy, addRow);
        toggleCustom(copy);
        copy.querySelector("select").focus();
      });
    }
    var kind = form.querySelector("#schedule_kind");
    var own = form.querySelector(".schedule-own");
    function toggleSchedule() {
      var k = kind.value;
      own.hidden = ["daily", "weekly", "every"].indexOf(k) < 0;
      own.querySelector(".weekdays").hidden = k !== "weekly";
      own.querySelector("#schedule_hours").closest(".field").hidden = k !== "every";
    }
    if (kind && own) { kind.addEventListener("change", toggleSchedule); toggleSchedule(); }
    var out = form.querySelector("#selection");
    var url = form.getAttribute("data-selection-url");
    var timer = null;
    function check() {
      var params = new URLSearchParams();
      var conn = form.querySelector("input[name=connection]:checked");
      if (conn) { params.append("connection_id", conn.value); }
      form.querySelectorAll("input[name=segments]:checked").forEach(function (box) { params.append("segment", box.value); });
      var email = form.querySelector("select[name=email]");
      if (email && email.value) { params.append("email", email.value); }
      if (!params.getAll("segment").length) { out.textContent = ""; return; }
      out.textContent = "Counting…";
      fetch(url + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (result) {
          out.textContent = "";
          var total = result.total === null ? "—" : Number(result.total).toLocaleString();
          out.appendChild(el("p", {}, [document.createTextNode("Selected: "), el("strong", { text: total }), document.createTextNode(" distinct profiles.")]));
          (result.warnings || []).forEach(function (w) { out.appendChild(el("p", { className: "warning", role: "alert", text: w })); });
        }).catch(function () { out.textContent = ""; });
    }
    /* Offer only the fields of the chosen connection's destination type. */
    function showFieldsOf() {
      var conn = form.querySelector("input[name=connection]:checked");
      var type = conn ? conn.getAttribute("data-type") : null;
      form.querySelectorAll("select[name=map_target] optgroup[data-type]").forEach(function (group) {
        var other = type !== null && group.getAttribute("data-type") !== type;
        group.hidden = other;
        group.disabled = other;
      });
    }
    showFieldsOf();
    check();  /* the page shows the counts of the last refreshes; count the selection now */
    form.addEventListener("change", function (event) {
      var name = event.target.name;
      if (name === "connection") { showFieldsOf(); }
      if (name === "segments" || name === "connection" || name === "email") {
        window.clearTimeout(timer);
        timer = window.setTimeout(check, 250);
      }
    });
  }

  /* ------------------------------------------------------------------ run page */

  /* "2025-06-30T12:00:05Z" as the server's |when filter shows it: "2025-06-30 12:00 UTC". */
  function when(iso, empty) {
    if (!iso) { return empty; }
    return iso.slice(0, 16).replace("T", " ") + " UTC";
  }

  function setText(id, text) {
    var node = document.getElementById(id);
    if (node) { node.textContent = text; }
  }

  function runPoll(box) {
    if (box.getAttribute("data-final") === "true") { return; }
    var url = box.getAttribute("data-run-poll");
    var bar = document.getElementById("run-bar");
    var text = document.getElementById("run-progress-text");
    var status = document.getElementById("run-status");
    function showFinal(run) {
      ["cancel-form", "refresh-link", "run-stopping"].forEach(function (id) {
        var node = document.getElementById(id);
        if (node) { node.hidden = true; }
      });
      box.setAttribute("data-final", "true");
    }
    function tick() {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (run) {
        var p = run.progress || {};
        if (p.percent !== null && p.percent !== undefined) { bar.value = p.percent; }
        var words = p.items_total ? (p.items_done.toLocaleString() + " of " + p.items_total.toLocaleString() + " items (" + p.percent + "%)") : (run.final ? "Done" : "Waiting to start…");
        if (p.eta_seconds !== null && p.eta_seconds !== undefined) { words += " — about " + Math.round(p.eta_seconds) + " s left"; }
        text.textContent = words;
        status.textContent = "";
        status.appendChild(el("span", { className: "status status-" + run.status, text: run.status_label }));
        Object.keys(run.counts || {}).forEach(function (key) {
          var cell = document.querySelector("[data-count='" + key + "']");
          if (cell) { cell.textContent = Number(run.counts[key]).toLocaleString(); }
        });
        setText("run-started", when(run.started_at, "not yet"));
        setText("run-ended", when(run.ended_at, "not yet"));
        var seconds = run.duration_seconds;
        if (seconds === null || seconds === undefined) { seconds = run.final ? null : p.elapsed_seconds; }
        setText("run-duration", (seconds === null || seconds === undefined) ? "—" : Number(seconds).toFixed(1) + " s" + (run.final ? "" : " so far"));
        setText("run-message", run.message || "—");
        if (run.final) {
          showFinal(run);
          // What only the server renders (plan, warnings, rejected contacts): load it once.
          var rejects = Object.keys(run.rejects || {}).reduce(function (n, k) { return n + run.rejects[k]; }, 0);
          if (run.plan || (run.warnings || []).length || rejects) { window.location.reload(); }
          return;
        }
        window.setTimeout(tick, 1000);
      }).catch(function () { window.setTimeout(tick, 3000); });
    }
    var link = document.getElementById("refresh-link");
    if (link) { link.hidden = true; }
    window.setTimeout(tick, 1000);
  }

  /* ------------------------------------------------------------------ export page: Count now */

  function countNow(box) {
    var button = box.querySelector("[data-count-now]");
    var url = box.getAttribute("data-live-counts");
    if (!button || !url) { return; }
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var note = document.getElementById("counts-note");
      note.textContent = "Counting…";
      button.setAttribute("aria-disabled", "true");
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.json();
      }).then(function (result) {
        (result.segments || []).forEach(function (s) {
          var cell = box.querySelector("[data-members='" + s.id + "']");
          if (cell) { cell.textContent = s.members === null ? "—" : Number(s.members).toLocaleString(); }
          var at = box.querySelector("[data-counted-at='" + s.id + "']");
          if (at) { at.textContent = when(s.counted_at, "now"); }
        });
        var row = document.getElementById("distinct-row");
        if (result.distinct_total !== null && result.distinct_total !== undefined) {
          setText("distinct-total", Number(result.distinct_total).toLocaleString());
          row.hidden = false;
        }
        var out = document.getElementById("count-warnings");
        out.textContent = "";
        (result.warnings || []).forEach(function (w) { out.appendChild(el("p", { className: "warning", role: "alert", text: w })); });
        note.textContent = "Members counted now.";
      }).catch(function () {
        note.textContent = "Counting failed; try again, or reload the page.";
      }).then(function () { button.removeAttribute("aria-disabled"); });
    });
  }

  /* ------------------------------------------------------------- segment preview */

  /* The segment page opens without the profiles; its member preview is read after it. */
  function loadPreview(box) {
    var url = box.getAttribute("data-preview");
    var body = document.getElementById("preview-body");
    var note = document.getElementById("preview-note");
    if (!url || !body || !note) { return; }
    note.textContent = "Reading the members…";
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (result) { return { ok: r.ok, result: result }; });
    }).then(function (reply) {
      body.textContent = "";
      if (!reply.ok) {
        body.appendChild(el("p", { className: "error-text", text: reply.result.error || "The members cannot be read." }));
        return;
      }
      var columns = reply.result.columns;
      var head = el("tr", {}, columns.map(function (c) { return el("th", { scope: "col", text: c }); }));
      var rows = reply.result.rows.map(function (row) {
        return el("tr", {}, columns.map(function (c) { return el("td", { text: row[c] === null || row[c] === undefined ? "" : String(row[c]) }); }));
      });
      if (!rows.length) {
        rows = [el("tr", {}, [el("td", { colspan: String(columns.length), className: "empty", text: "No member matches now." })])];
      }
      var table = el("table", { className: "compact" }, [
        el("caption", { className: "visually-hidden", text: "First members by profile id" }),
        el("thead", {}, [head]),
        el("tbody", {}, rows)
      ]);
      body.appendChild(el("div", { className: "table-wrap" }, [table]));
    }).catch(function () {
      note.textContent = "Reading the members failed; ";
      note.appendChild(el("a", { href: "?preview=live#preview-title", text: "try again" }));
      note.appendChild(document.createTextNode("."));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var builderForm = document.querySelector("form[data-builder]");
    if (builderForm) {
      var builder = new Builder(builderForm);
      document.getElementById("estimate").hidden = false;
      builder.start();
    }
    var exportFormNode = document.querySelector("form[data-export-form]");
    if (exportFormNode) { exportForm(exportFormNode); }
    var poll = document.querySelector("[data-run-poll]");
    if (poll) { runPoll(poll); }
    var counts = document.querySelector("[data-live-counts]");
    if (counts) { countNow(counts); }
    var preview = document.querySelector("[data-preview]");
    if (preview) { loadPreview(preview); }
  });
})();
