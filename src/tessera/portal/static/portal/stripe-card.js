/* Card payments with Stripe.js: the card goes from the browser to Stripe, and only the
   PaymentMethod id (pm_...) reaches Tessera. 3-D Secure is confirmed here too. */
(function () {
  "use strict";

  function stripeClient() {
    var key = document.querySelector("meta[name=stripe-key]");
    if (!window.Stripe || !key || !key.content) return null;
    return window.Stripe(key.content);
  }

  function payingByCard(form) {
    var choice = form.querySelector("input[name=payment]:checked");
    return !choice || choice.value === "card";
  }

  function setUpCardForm(stripe, form) {
    var mountPoint = form.querySelector("[data-card-element]");
    var errors = form.querySelector("[data-card-errors]");
    var idField = form.querySelector("input[name=payment_method_id]");
    var card = stripe.elements().create("card", { hidePostalCode: true });
    card.mount(mountPoint);
    var sending = false;

    form.addEventListener("submit", function (event) {
      /* Buttons that only redraw the form (add an attendee) need no card. */
      if (event.submitter && event.submitter.hasAttribute("formnovalidate")) return;
      if (!payingByCard(form) || (idField.value && idField.value.indexOf("pm_") === 0)) return;
      event.preventDefault();
      if (sending) return;
      sending = true;
      if (errors) errors.textContent = "";
      stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
        if (result && result.paymentMethod) {
          idField.value = result.paymentMethod.id;
          form.submit();
          return;
        }
        sending = false;
        if (errors) errors.textContent = (result && result.error && result.error.message) || "The card could not be read.";
      });
    });
  }

  function confirmPayment(stripe, box) {
    var secret = box.getAttribute("data-client-secret");
    var form = box.querySelector("form");
    var status = box.querySelector("[data-confirm-status]");
    stripe.confirmCardPayment(secret).then(function (result) {
      if (result && result.error && status) status.textContent = result.error.message || "";
      form.submit();  /* the server asks Stripe what happened, whatever the browser saw */
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var stripe = stripeClient();
    if (!stripe) return;
    document.querySelectorAll("form[data-stripe-card]").forEach(function (f) { setUpCardForm(stripe, f); });
    document.querySelectorAll("[data-stripe-confirm]").forEach(function (b) { confirmPayment(stripe, b); });
  });
})();
