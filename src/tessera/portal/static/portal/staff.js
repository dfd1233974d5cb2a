/* Staff check-in: the camera scanner (vendored nimiq qr-scanner) and the form's reset.
 * No inline script anywhere: the page's Content-Security-Policy allows none. */
(function () {
  "use strict";

  var form = document.getElementById("checkin-form");
  if (!form) return;
  var field = form.querySelector("input[name=code]");
  var start = document.getElementById("scan-start");
  var stop = document.getElementById("scan-stop");
  var panel = document.getElementById("scanner");
  var video = document.getElementById("scanner-video");
  var status = document.getElementById("scanner-status");
  var scanner = null;
  var busy = false;
  var last = { code: "", at: 0 };
  // The same ticket stays in front of the camera for a while: one scan of it is enough.
  var REPEAT_MS = 4000;

  // After each answer the field is empty and focused, ready for the next ticket (a USB
  // scanner types into it and presses Enter).
  document.body.addEventListener("htmx:beforeRequest", function (e) {
    if (e.target === form) busy = true;
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.target !== form) return;
    busy = false;
    if (e.detail.successful) {
      field.value = "";
      if (!scanner) field.focus();
    }
  });

  function onScan(result) {
    var code = (result && result.data ? result.data : String(result || "")).trim();
    var now = Date.now();
    if (!code || busy || (code === last.code && now - last.at < REPEAT_MS)) return;
    last = { code: code, at: now };
    field.value = code;
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  function say(text) { status.textContent = text; }

  function stopCamera() {
    if (scanner) { scanner.stop(); }
    panel.hidden = true;
    start.hidden = false;
    start.focus();
  }

  function startCamera() {
    if (!scanner) {
      scanner = new QrScanner(video, onScan, {
        returnDetailedScanResult: true,
        preferredCamera: "environment",
        maxScansPerSecond: 8,
      });
    }
    panel.hidden = false;
    start.hidden = true;
    say("Starting the camera…");
    scanner.start().then(function () {
      say("Hold the ticket's QR code in front of the camera.");
    }).catch(function (err) {
      say("The camera could not start (" + err + "). Type the code instead.");
      start.hidden = false;
    });
  }

  if (typeof QrScanner === "undefined" || !start) return;
  // The button appears only where a camera can be used (HTTPS, a camera present).
  QrScanner.hasCamera().then(function (has) { start.hidden = !has; });
  start.addEventListener("click", startCamera);
  stop.addEventListener("click", stopCamera);
  window.addEventListener("pagehide", function () { if (scanner) scanner.destroy(); });
})();
