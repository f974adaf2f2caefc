/* segsync — our own small progressive enhancement. Every page works without it. */
(function () {
  "use strict";

  function csrfToken(form) {
    var field = form && form.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  /* <form data-confirm="Remove export X?"> asks before submitting. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  /* <button data-check-url="/admin/connections/check" data-check-result="ID">: Connect checks
     the key in place (JSON POST with the CSRF header); without JS, Save checks anyway. */
  function connect(button) {
    var form = button.form;
    var out = document.getElementById(button.getAttribute("data-check-result"));
    var fields = ["type", "api_key", "secret_ref", "base_url", "rate_limit"];
    var body = {};
    fields.forEach(function (name) {
      var input = form.elements.namedItem(name);
      if (input && input.value) { body[name] = input.value; }
    });
    /* A type's own settings (a data region) are marked data-setting by the form. */
    body.settings = {};
    form.querySelectorAll("[data-setting]").forEach(function (input) {
      if (input.value) { body.settings[input.name] = input.value; }
    });
    out.className = "check-result";
    out.textContent = "Checking…";
    button.disabled = true;
    fetch(button.getAttribute("data-check-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(form) },
      body: JSON.stringify(body)
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") === -1) {
        var reason = response.status === 403
          ? "the page expired or you may not do this; reload the page and try again"
          : "the check failed (HTTP " + response.status + ")";
        return { ok: false, data: { ok: false, message: reason } };
      }
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      var good = result.ok && result.data.ok;
      out.className = "check-result " + (good ? "ok" : "failed");
      out.textContent = (good ? "✓ " : "✗ ") + (result.data.message || "the check failed");
    }).catch(function () {
      out.className = "check-result failed";
      out.textContent = "✗ could not reach segsync; check your network and try again";
    }).then(function () { button.disabled = false; });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-check-url]");
    if (button) {
      event.preventDefault();
      connect(button);
    }
  });

  /* Reveal elements marked data-js-only (controls that need JS, hidden otherwise). */
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  });
})();
