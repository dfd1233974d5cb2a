/* Tessera portal: the little the pages need beyond HTML and htmx. No inline script is
   allowed by the Content-Security-Policy, so behaviour is attached here by data attributes. */
(function () {
  "use strict";

  function csrfToken(scope) {
    var input = (scope || document).querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  /* Activity videos: report the position every few seconds and at the end. The server
     credits only the time that really passed, so these reports cannot be hurried. */
  function watchVideo(video) {
    var url = video.getAttribute("data-progress-url");
    var status = document.querySelector("[data-video-status]");
    var token = csrfToken(document.querySelector("[data-progress-csrf]"));
    var last = 0;
    var done = false;

    function report(ended) {
      if (done) return;
      var body = new URLSearchParams({ position: String(video.currentTime), ended: ended ? "1" : "" });
      fetch(url, {
        method: "POST",
        headers: { "X-CSRFToken": token, "Content-Type": "application/x-www-form-urlencoded" },
        body: body,
        credentials: "same-origin",
      })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (!status) return;
          if (data.completed) {
            done = true;
            status.textContent = "Watched! +" + (data.points || 0) + " pts earned.";
            status.setAttribute("data-completed", "true");
            document.querySelectorAll("[data-balance]").forEach(function (el) {
              if (data.balance !== undefined) el.textContent = data.balance.toLocaleString() + " pts";
            });
          } else if (data.needed_seconds !== undefined) {
            status.textContent = "Watched " + Math.floor(data.credited_seconds) + " of " + data.needed_seconds + " seconds.";
          }
        })
        .catch(function () { /* the next report tries again */ });
    }

    video.addEventListener("play", function () { report(false); });
    video.addEventListener("timeupdate", function () {
      var now = Date.now();
      if (now - last >= 2000) { last = now; report(false); }
    });
    video.addEventListener("ended", function () { report(true); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("video[data-progress-url]").forEach(watchVideo);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    event.target.querySelectorAll("video[data-progress-url]").forEach(watchVideo);
  });

  /* A form that must act once: disable its buttons once sent (the server also refuses a
     second submission of the same form key). */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once") || event.defaultPrevented) return;
    setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-busy", "true"); });
    }, 0);
  });
})();
