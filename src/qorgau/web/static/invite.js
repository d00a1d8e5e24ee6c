// Copy buttons: <button data-copy="#selector" data-copied="Copied">. The clipboard API needs a secure
// context; elsewhere the text is selected and copied the old way, so the admin can always paste it.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  if (!field) return;
  field.focus();
  field.select();
  let done = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(field.value);
      done = true;
    }
  } catch (_err) {
    done = false;
  }
  if (!done) {
    try { done = document.execCommand("copy"); } catch (_err) { done = false; }
  }
  if (done) {
    const label = button.textContent;
    button.textContent = button.dataset.copied || label;
    button.setAttribute("aria-live", "polite");
    setTimeout(() => { button.textContent = label; }, 2500);
  }
});
