// The pass designer's live preview (console/designer): on input, after 150 ms of quiet,
// the form's state goes to the preview endpoint and the preview, the problems and the
// warnings are swapped in place. Colours are set through the CSSOM (style.setProperty),
// which the console's CSP allows; nothing here is needed for the page to work.
(function () {
  "use strict";
  var form = document.getElementById("designer");
  if (form) {
    var csrf = form.querySelector("input[name=csrf]").value;
    var timer = null;
    var pairs = form.querySelectorAll("input[type=color][data-pair]");
    pairs.forEach(function (picker) {
      var text = document.getElementById(picker.dataset.pair);
      picker.addEventListener("input", function () { text.value = picker.value; });
      text.addEventListener("input", function () {
        if (/^#[0-9a-fA-F]{6}$/.test(text.value)) { picker.value = text.value.toLowerCase(); }
      });
    });
    var apply = function (answer) {
      var preview = document.getElementById("preview");
      if (answer.html !== null) {
        preview.innerHTML = answer.html;
        var root = preview.querySelector(".pf-preview");
        Object.keys(answer.colors).forEach(function (name) {
          root.style.setProperty(name, answer.colors[name]);
        });
      }
      document.getElementById("problem-summary").innerHTML = answer.summary;
      document.getElementById("contrast").innerHTML = answer.contrast;
      form.querySelectorAll(".row-limit").forEach(function (el) { el.innerHTML = answer.limit; });
      form.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
      form.querySelectorAll("[aria-invalid]").forEach(function (el) {
        el.removeAttribute("aria-invalid");
        el.removeAttribute("aria-describedby");
      });
      answer.errors.forEach(function (e) {
        var control = document.getElementById(e.id);
        if (!control) { return; }
        var p = document.createElement("p");
        p.className = "field-error";
        p.id = "err-" + e.id;
        p.textContent = e.text;
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", p.id);
        // Where the server puts it: under the whole control (a colour's text box sits in a
        // row with its picker), or in a translation's cell.
        (control.closest(".control, td") || control.parentNode).appendChild(p);
      });
    };
    // Answers may come back out of order; only the one for the latest state is drawn.
    var sent = 0;
    var send = function () {
      var mine = ++sent;
      fetch(form.dataset.preview, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf },
        body: new URLSearchParams(new FormData(form))
      }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) { if (answer && mine === sent) { apply(answer); } })
        .catch(function () {});
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(send, 150);
    });
    // The preview's language picker sits outside the form (form="designer"): its change
    // does not bubble to the form, and redraws at once.
    var lang = document.getElementById("preview-lang");
    if (lang) { lang.addEventListener("change", send); }
  }
  var progress = document.getElementById("progress");
  if (progress && progress.dataset.done !== "true") {
    var poll = setInterval(function () {
      fetch(progress.dataset.poll, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          document.getElementById("queued").textContent = answer.text;
          if (answer.queued === 0) {
            clearInterval(poll);
            document.getElementById("progress-done").className = "notice";
            var again = document.getElementById("check-again");
            if (again) { again.remove(); }
          }
        })
        .catch(function () {});
    }, 1000);
  }
})();
