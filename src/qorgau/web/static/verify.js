// Recomputes an RFC 9162 inclusion proof in the browser (§2.1.3.2), so the page need not be trusted.
(function () {
  "use strict";
  const box = document.getElementById("inclusion-check");
  const out = document.getElementById("browser-verdict");
  if (!box || !out || !window.crypto || !window.crypto.subtle) { return; }
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const cat = (...parts) => {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return all;
  };
  const sha = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  async function verify() {
    let fn = BigInt(box.dataset.index);
    let sn = BigInt(box.dataset.size) - 1n;
    if (fn > sn) { return false; }
    const path = box.dataset.path ? box.dataset.path.split(",").map(b64) : [];
    let r = await sha(cat(new Uint8Array([0]), b64(box.dataset.leaf)));
    for (const p of path) {
      if (sn === 0n) { return false; }
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha(cat(new Uint8Array([1]), p, r));
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        r = await sha(cat(new Uint8Array([1]), r, p));
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n && eq(r, b64(box.dataset.root));
  }
  verify().then((ok) => {
    out.textContent = (ok ? "✓ " : "✗ ") + (ok ? out.dataset.ok : out.dataset.bad);
    out.className = ok ? "ok" : "bad";
    out.dataset.result = ok ? "ok" : "bad";
  });
})();
