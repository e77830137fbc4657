// qrverify scanner page: camera (BarcodeDetector) -> /v1/verify, photo -> /v1/verify/image,
// pasted text -> /v1/verify. No external resources; all output through textContent.
"use strict";

const REASONS = {
  bad_prefix: "This is not a health certificate QR code.",
  bad_base45: "The QR code is damaged or was not read completely.",
  bad_compression: "The QR code content is damaged.",
  bad_cose: "The QR code does not hold a signed certificate.",
  bad_cwt: "The certificate data is damaged.",
  bad_payload: "The certificate content is not in the EU format.",
  too_large: "The QR code content is too large to be a health certificate.",
  unknown_key: "The certificate was signed by an issuer we do not trust.",
  bad_signature: "The signature is not valid: the certificate may be forged or altered.",
  key_usage: "The issuer is not allowed to sign this type of certificate.",
  key_expired: "The certificate was signed outside the issuer key's validity.",
  token_expired: "The certificate has expired.",
  token_not_yet_valid: "The certificate is not valid yet.",
  revoked: "The certificate has been revoked.",
  not_in_registry: "The certificate is not in the federal or regional register.",
  bad_link: "This register link is malformed.",
  not_found: "The register has no certificate for this link.",
  vaccine_not_accepted: "This vaccine is not accepted for entry.",
  vaccination_incomplete: "The vaccination course is not complete.",
  vaccination_not_yet_valid: "The vaccination is not valid for entry yet.",
  vaccination_expired: "The vaccination is too old: no longer valid for entry.",
  recovery_not_yet_valid: "The recovery certificate is not valid yet.",
  recovery_expired: "The recovery certificate is no longer valid for entry.",
  test_positive: "The test result is not negative.",
  test_type_not_accepted: "This type of test is not accepted: a PCR test is required.",
  test_expired: "The test is too old: it is valid for 72 hours.",
  test_in_future: "The test date is in the future.",
};
const TYPES = { vaccination: "Vaccination", recovery: "Recovery", test: "Test" };
const KEY_STORAGE = "qrverify.apiKey";

const $ = (id) => document.getElementById(id);
let busy = false;
let scanning = false;
let stream = null;
let detector = null;

function apiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

function setResult(kind, title, reason) {
  const box = $("result");
  box.className = "result " + kind;
  box.dataset.status = kind;
  $("result-status").textContent = title;
  $("reason").textContent = reason || "";
}

function clearHolder() {
  ["holder-name", "holder-latin", "holder-dob", "cert-info"].forEach((id) => { $(id).textContent = ""; });
  $("holder").hidden = true;
  $("compare").hidden = true;
}

function showVerdict(v) {
  clearHolder();
  const valid = v.status === "valid";
  setResult(valid ? "valid" : "invalid", valid ? "VALID" : "INVALID",
            valid ? "Entry allowed." : (REASONS[v.reason] || v.detail || "The certificate is not valid."));
  const holder = v.holder;
  if (holder) {
    $("holder-name").textContent = holder.name || "";
    $("holder-latin").textContent = holder.name_latin || "";
    $("holder-dob").textContent = holder.dob || "";
    const c = v.certificate || {};
    const until = c.valid_until ? " · valid until " + c.valid_until.slice(0, 10) : "";
    $("cert-info").textContent = (TYPES[c.type] || c.type || "") + (c.issuer ? " · " + c.issuer : "") + until;
    $("holder").hidden = false;
    $("compare").hidden = !valid;
  }
  $("next").hidden = false;
}

function showError(message) {
  setResult("error", "NOT CHECKED", message);
  clearHolder();
  $("next").hidden = false;
}

function reset() {
  setResult("idle", "Ready to scan", "Point the camera at the QR code, take a photo, or paste the code.");
  clearHolder();
  $("next").hidden = true;
  $("photo").value = "";
  if (stream) { scanning = true; scanLoop(); }
}

async function send(url, options) {
  if (busy) return;
  busy = true;
  $("busy").hidden = false;
  try {
    const resp = await fetch(url, options);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (resp.ok && body && body.status) {
      showVerdict(body);
    } else if (resp.status === 401) {
      showError("This scanner needs a valid scanner key: open “Scanner key” above.");
      toggleSettings(true);
    } else {
      showError((body && body.error) ? "Could not check: " + (body.error.message || body.error) : "Could not check (HTTP " + resp.status + ").");
    }
  } catch (e) {
    showError("The verification service cannot be reached. Check the network.");
  } finally {
    busy = false;
    $("busy").hidden = true;
  }
}

function verifyToken(token) {
  return send("/v1/verify", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ token: token }),
    cache: "no-store",
  });
}

function verifyPhoto(file) {
  const form = new FormData();
  form.append("image", file, file.name || "photo.jpg");
  return send("/v1/verify/image", { method: "POST", headers: headers(), body: form, cache: "no-store" });
}

async function scanLoop() {
  if (!scanning || !detector) return;
  const video = $("video");
  try {
    if (video.readyState >= 2 && !busy) {
      const codes = await detector.detect(video);
      const code = codes.find((c) => c.rawValue);
      if (code) {
        scanning = false;
        await verifyToken(code.rawValue);
        return;
      }
    }
  } catch (e) { /* a frame that cannot be read: try the next */ }
  setTimeout(scanLoop, 150);
}

async function startCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (e) {
    $("camera-note").textContent = "The camera is not available (" + (e.name || "error") + "). Take a photo instead.";
    $("camera-note").hidden = false;
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play().catch(() => {});
  $("camera-start").hidden = true;
  $("camera-stop").hidden = false;
  scanning = true;
  scanLoop();
}

function stopCamera() {
  scanning = false;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("video").srcObject = null;
  $("camera-start").hidden = false;
  $("camera-stop").hidden = true;
}

function toggleSettings(open) {
  const box = $("settings");
  box.hidden = open === undefined ? !box.hidden : !open;
  $("settings-toggle").setAttribute("aria-expanded", String(!box.hidden));
}

async function setupCamera() {
  const note = $("camera-note");
  const hasCamera = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  let formats = [];
  if ("BarcodeDetector" in window) {
    try { formats = await window.BarcodeDetector.getSupportedFormats(); } catch (e) { formats = []; }
  }
  if (hasCamera && formats.includes("qr_code")) {
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    $("camera-box").hidden = false;
  } else {
    note.textContent = window.isSecureContext
      ? "Live scanning is not supported by this browser: take a photo of the QR code instead."
      : "Live scanning needs a secure (https) connection: take a photo of the QR code instead.";
    note.hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = apiKey();
  $("settings-toggle").addEventListener("click", () => toggleSettings());
  $("api-key-save").addEventListener("click", () => {
    try { localStorage.setItem(KEY_STORAGE, $("api-key").value.trim()); } catch (e) { /* private mode */ }
    toggleSettings(false);
  });
  $("photo").addEventListener("change", (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (file) verifyPhoto(file);
  });
  $("paste-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    // Base45 contains spaces: remove only line breaks that pasting may add.
    const token = $("token").value.replace(/[\r\n]+/g, "");
    if (token) verifyToken(token);
  });
  $("next").addEventListener("click", () => { $("token").value = ""; reset(); });
  $("camera-start").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", stopCamera);
  setupCamera();
});
