// qrverify scanner page: live camera (BarcodeDetector, else the vendored jsQR) -> /v1/verify,
// photo -> /v1/verify/image, text box (keyboard-wedge scanners, paste) -> /v1/verify.
// Russian or English (navigator.languages, switchable). No external resources; all output
// goes through textContent.
"use strict";

const TEXT = {
  en: {
    title: "qrverify scanner",
    heading: "Certificate check",
    lang: "Русский",
    keyToggle: "Scanner key",
    keyLabel: "Scanner key (X-API-Key) for this service",
    save: "Save",
    ready: "Ready to scan",
    readyHint: "Point the camera at the QR code, scan it, take a photo, or paste the code.",
    name: "Name",
    nameLatin: "Name (Latin)",
    dob: "Date of birth",
    document: "Document",
    certificate: "Certificate",
    compare: "Compare these details with the guest's ID.",
    next: "Next guest",
    tokenLabel: "Code from a scanner, or pasted (HC1:… or a register link)",
    check: "Check",
    cameraStart: "Start camera",
    cameraStop: "Stop camera",
    photo: "Take a photo of the QR code",
    busy: "Checking…",
    checking: "Checking…",
    valid: "VALID",
    invalid: "INVALID",
    notChecked: "NOT CHECKED",
    entryAllowed: "Entry allowed.",
    notValid: "The certificate is not valid.",
    validUntil: "valid until",
    empty: "Scan or paste a code first.",
    needKey: "This scanner needs a valid scanner key: enter it under “Scanner key” above.",
    couldNot: "Could not check: ",
    httpStatus: (s) => "Could not check (HTTP " + s + ").",
    unreachable: "The verification service cannot be reached. Check the network.",
    noCamera: (e) => "The camera is not available (" + e + "). Take a photo instead.",
    insecure: "Live scanning needs a secure (https) connection: take a photo of the QR code instead.",
    noLive: "Live scanning is not available in this browser: take a photo of the QR code instead.",
    types: { vaccination: "Vaccination", recovery: "Recovery", test: "Test", temporary: "Temporary" },
  },
  ru: {
    title: "qrverify: проверка сертификатов",
    heading: "Проверка сертификата",
    lang: "English",
    keyToggle: "Ключ сканера",
    keyLabel: "Ключ сканера (X-API-Key) для этого сервиса",
    save: "Сохранить",
    ready: "Готов к проверке",
    readyHint: "Наведите камеру на QR-код, отсканируйте его, сфотографируйте или вставьте код.",
    name: "ФИО",
    nameLatin: "ФИО латиницей",
    dob: "Дата рождения",
    document: "Документ",
    certificate: "Сертификат",
    compare: "Сверьте эти данные с документом гостя.",
    next: "Следующий гость",
    tokenLabel: "Код со сканера или вставленный (HC1:… или ссылка из реестра)",
    check: "Проверить",
    cameraStart: "Включить камеру",
    cameraStop: "Выключить камеру",
    photo: "Сфотографировать QR-код",
    busy: "Проверка…",
    checking: "Проверка…",
    valid: "ДЕЙСТВИТЕЛЕН",
    invalid: "НЕДЕЙСТВИТЕЛЕН",
    notChecked: "НЕ ПРОВЕРЕН",
    entryAllowed: "Вход разрешён.",
    notValid: "Сертификат недействителен.",
    validUntil: "действует до",
    empty: "Сначала отсканируйте или вставьте код.",
    needKey: "Для проверки нужен действующий ключ сканера: введите его в «Ключ сканера» вверху.",
    couldNot: "Не удалось проверить: ",
    httpStatus: (s) => "Не удалось проверить (HTTP " + s + ").",
    unreachable: "Сервис проверки недоступен. Проверьте сеть.",
    noCamera: (e) => "Камера недоступна (" + e + "). Сфотографируйте QR-код.",
    insecure: "Для сканирования камерой нужно защищённое (https) соединение: сфотографируйте QR-код.",
    noLive: "Этот браузер не умеет сканировать камерой: сфотографируйте QR-код.",
    types: { vaccination: "Вакцинация", recovery: "Перенесённое заболевание", test: "Тест",
             temporary: "Временный" },
  },
};
// Every reason code in plain words for the door staff: [English, Russian].
const REASONS = {
  bad_prefix: ["This is not a health certificate QR code.",
    "Это не QR-код COVID-сертификата."],
  bad_base45: ["The QR code is damaged or was not read completely.",
    "QR-код повреждён или считан не полностью."],
  bad_compression: ["The QR code content is damaged.",
    "Содержимое QR-кода повреждено."],
  bad_cose: ["The QR code does not hold a signed certificate.",
    "В QR-коде нет подписанного сертификата."],
  bad_cwt: ["The certificate data is damaged.",
    "Данные сертификата повреждены."],
  bad_payload: ["The certificate content is not in the EU format.",
    "Содержимое сертификата не в формате ЕС."],
  too_large: ["The QR code content is too large to be a health certificate.",
    "Содержимое QR-кода слишком велико для сертификата."],
  unknown_key: ["The certificate was signed by an issuer we do not trust.",
    "Сертификат подписан издателем, которому мы не доверяем."],
  bad_signature: ["The signature is not valid: the certificate may be forged or altered.",
    "Подпись недействительна: сертификат может быть подделан или изменён."],
  key_usage: ["The issuer is not allowed to sign this type of certificate.",
    "Издателю не разрешено подписывать сертификаты этого типа."],
  key_expired: ["The issuer's signing key is not valid at the time of the check.",
    "Ключ подписи издателя недействителен на момент проверки."],
  token_expired: ["The certificate has expired.",
    "Срок действия сертификата истёк."],
  token_not_yet_valid: ["The certificate is not valid yet.",
    "Сертификат ещё не действует."],
  revoked: ["The certificate has been revoked.",
    "Сертификат отозван."],
  not_in_registry: ["The certificate is not in the federal or regional register.",
    "Сертификата нет в федеральном или региональном реестре."],
  bad_link: ["The link in the QR code is damaged or incomplete.",
    "Ссылка в QR-коде повреждена или неполная."],
  not_found: ["There is no such certificate in the register.",
    "Такого сертификата нет в реестре."],
  vaccine_not_accepted: ["This vaccine is not accepted for entry.",
    "Эта вакцина не принимается для входа."],
  vaccination_incomplete: ["The vaccination course is not complete.",
    "Курс вакцинации не завершён."],
  vaccination_not_yet_valid: ["The vaccination is not valid for entry yet.",
    "Вакцинация ещё не даёт права входа."],
  vaccination_expired: ["The vaccination is too old: no longer valid for entry.",
    "Вакцинация слишком давняя: больше не даёт права входа."],
  recovery_not_yet_valid: ["The recovery certificate is not valid yet.",
    "Сертификат о перенесённом заболевании ещё не действует."],
  recovery_expired: ["The recovery certificate is no longer valid for entry.",
    "Сертификат о перенесённом заболевании больше не даёт права входа."],
  test_positive: ["The test result is not negative.",
    "Результат теста не является отрицательным."],
  test_type_not_accepted: ["This type of test is not accepted: a PCR test is required.",
    "Этот тип теста не принимается: нужен ПЦР-тест."],
  test_expired: ["The test is too old: it is valid for 72 hours.",
    "Тест слишком старый: он действует 72 часа."],
  test_in_future: ["The test date is in the future.",
    "Дата теста в будущем."],
};
const KEY_STORAGE = "qrverify.apiKey";
const LANG_STORAGE = "qrverify.lang";
const SCAN_INTERVAL_MS = 150;
const FRAME_MAX_SIDE = 800; // frames are scaled down to this before jsQR reads them

const $ = (id) => document.getElementById(id);
let lang = "en";
let busy = false;
let queued = null; // a text that arrived while a check was running (a fast wedge scanner)
let lastShown = null; // what the result box shows, to redraw it after a language switch
let scanning = false;
let stream = null;
let detect = null; // async (video) -> text or null: BarcodeDetector or jsQR
let fromBox = false; // the last check came from the text box (a wedge scanner, a paste)

function t(key) { return TEXT[lang][key]; }

function reasonText(code) {
  const pair = Object.prototype.hasOwnProperty.call(REASONS, code) ? REASONS[code] : null;
  return pair ? pair[lang === "ru" ? 1 : 0] : "";
}

function stored(name) {
  try { return localStorage.getItem(name) || ""; } catch (e) { return ""; }
}

function store(name, value) {
  try { localStorage.setItem(name, value); } catch (e) { /* private mode: not remembered */ }
}

function preferredLanguage() {
  const chosen = stored(LANG_STORAGE);
  if (chosen === "ru" || chosen === "en") return chosen;
  const wanted = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (primary === "ru" || primary === "en") return primary;
  }
  return "en";
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t("title");
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  const other = lang === "ru" ? "en" : "ru";
  $("lang").textContent = t("lang");
  $("lang").setAttribute("lang", other);
  redraw();
}

function headers(extra) {
  const h = Object.assign({ "Accept-Language": lang === "ru" ? "ru, en;q=0.5" : "en" }, extra || {});
  const key = stored(KEY_STORAGE);
  if (key) h["X-API-Key"] = key;
  return h;
}

function setResult(kind, title, reason, detail) {
  const box = $("result");
  box.className = "result " + kind;
  box.dataset.status = kind;
  $("result-status").textContent = title;
  $("reason").textContent = reason || "";
  $("detail").textContent = detail || "";
  $("detail").hidden = !detail || detail === reason;
}

function clearHolder() {
  ["holder-name", "holder-latin", "holder-dob", "holder-document", "cert-info"].forEach((id) => {
    $(id).textContent = "";
  });
  $("holder-document").hidden = true;
  $("holder-document-label").hidden = true;
  $("holder").hidden = true;
  $("compare").hidden = true;
}

// The MRZ-style Latin name of the EU format: "IVANOV<IVAN" reads "IVANOV IVAN".
function readableLatin(name) {
  return String(name || "").replace(/</g, " ").replace(/\s+/g, " ").trim();
}

function nowrapSpan(text) {
  const span = document.createElement("span");
  span.className = "nowrap";
  span.textContent = text;
  return span;
}

function showVerdict(v) {
  lastShown = { kind: "verdict", verdict: v };
  clearHolder();
  const valid = v.status === "valid";
  const reason = valid ? t("entryAllowed") : (reasonText(v.reason) || v.detail || t("notValid"));
  setResult(valid ? "valid" : "invalid", valid ? t("valid") : t("invalid"), reason,
            valid ? "" : (v.detail || ""));
  const holder = v.holder;
  if (holder) {
    $("holder-name").textContent = holder.name || "";
    $("holder-latin").textContent = readableLatin(holder.name_latin);
    $("holder-dob").textContent = holder.dob || "";
    if (holder.document) {
      $("holder-document").textContent = holder.document;
      $("holder-document").hidden = false;
      $("holder-document-label").hidden = false;
    }
    const c = v.certificate || {};
    const info = $("cert-info");
    const parts = [t("types")[c.type] || c.type || "", c.issuer || ""].filter((p) => p);
    parts.forEach((p, i) => {
      if (i) info.appendChild(document.createTextNode(" · "));
      info.appendChild(nowrapSpan(p));
    });
    if (c.valid_until) {
      // "valid until 2022-06-01": the words may wrap, the date never does
      info.appendChild(document.createTextNode((parts.length ? " · " : "") + t("validUntil") + " "));
      const date = nowrapSpan(String(c.valid_until).slice(0, 10));
      date.className = "nowrap date";
      info.appendChild(date);
    }
    $("holder").hidden = false;
    $("compare").hidden = !valid;
  }
  $("next").hidden = false;
}

function showError(key, arg) {
  lastShown = { kind: "error", key: key, arg: arg };
  clearHolder();
  const message = typeof t(key) === "function" ? t(key)(arg) : t(key) + (arg || "");
  setResult("error", t("notChecked"), message);
  $("next").hidden = false;
}

function showIdle(hintKey) {
  lastShown = { kind: "idle", key: hintKey };
  clearHolder();
  setResult("idle", t("ready"), t(hintKey));
  $("result").classList.toggle("nudge", hintKey !== "readyHint");
  $("next").hidden = true;
}

function showChecking() {
  lastShown = { kind: "checking" };
  clearHolder();
  setResult("checking", t("checking"), "");
  $("next").hidden = true;
}

function redraw() {
  const s = lastShown;
  if (!s || s.kind === "idle") showIdle(s ? s.key : "readyHint");
  else if (s.kind === "verdict") showVerdict(s.verdict);
  else if (s.kind === "error") showError(s.key, s.arg);
  else if (s.kind === "checking") showChecking();
}

function reset() {
  showIdle("readyHint");
  $("photo").value = "";
  if (stream && !scanning) { scanning = true; scanLoop(); }
}

function errorMessage(body) {
  const e = body && body.error;
  if (!e) return "";
  if (typeof e === "string") return e;
  return String(e.message || e.code || "");
}

// One request at a time; a text that arrives meanwhile (a wedge scanner is fast) waits.
async function send(url, options) {
  busy = true;
  $("busy").hidden = false;
  showChecking();
  try {
    const resp = await fetch(url, options);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (resp.ok && body && body.status) {
      showVerdict(body);
    } else if (resp.status === 401) {
      showError("needKey");
      $("settings-toggle").hidden = false;
      toggleSettings(true);
    } else {
      const msg = errorMessage(body);
      if (msg) showError("couldNot", msg);
      else showError("httpStatus", resp.status);
    }
  } catch (e) {
    showError("unreachable");
  } finally {
    busy = false;
    $("busy").hidden = true;
  }
  if (queued !== null) {
    const next = queued;
    queued = null;
    await verifyToken(next);
  }
}

function verifyToken(token) {
  if (busy) { queued = token; return Promise.resolve(); }
  return send("/v1/verify", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ token: token }),
    cache: "no-store",
  });
}

function verifyPhoto(file) {
  if (busy) return Promise.resolve();
  const form = new FormData();
  form.append("image", file, file.name || "photo.jpg");
  return send("/v1/verify/image", { method: "POST", headers: headers(), body: form, cache: "no-store" });
}

// -- live camera ------------------------------------------------------------------------

function nativeDetector() {
  const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  return async (video) => {
    const codes = await detector.detect(video);
    const code = codes.find((c) => c.rawValue);
    return code ? code.rawValue : null;
  };
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error("cannot load " + src));
    document.head.appendChild(s);
  });
}

async function jsqrDetector() {
  if (typeof window.jsQR !== "function") await loadScript("/static/jsQR.js");
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return async (video) => {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    const scale = Math.min(1, FRAME_MAX_SIDE / Math.max(w, h));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const frame = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const code = window.jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" });
    return code && code.data ? code.data : null;
  };
}

async function scanLoop() {
  if (!scanning || !detect) return;
  const video = $("video");
  try {
    if (video.readyState >= 2 && !busy) {
      const text = await detect(video);
      if (text && scanning) {
        scanning = false;
        fromBox = false;
        await verifyToken(text);
        return;
      }
    }
  } catch (e) { /* a frame that cannot be read: try the next */ }
  setTimeout(scanLoop, SCAN_INTERVAL_MS);
}

async function startCamera() {
  try {
    if (!detect) {
      const native = "BarcodeDetector" in window
        && (await window.BarcodeDetector.getSupportedFormats().catch(() => [])).includes("qr_code");
      detect = native ? nativeDetector() : await jsqrDetector();
      $("camera-box").dataset.decoder = native ? "native" : "jsqr";
    }
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (e) {
    $("camera-note").textContent = t("noCamera")((e && e.name) || "error");
    $("camera-note").hidden = false;
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  video.hidden = false;
  await video.play().catch(() => {});
  $("camera-start").hidden = true;
  $("camera-stop").hidden = false;
  scanning = true;
  scanLoop();
}

function stopCamera() {
  scanning = false;
  if (stream) stream.getTracks().forEach((tr) => tr.stop());
  stream = null;
  $("video").srcObject = null;
  $("video").hidden = true;
  $("camera-start").hidden = false;
  $("camera-stop").hidden = true;
}

function setupCamera() {
  const note = $("camera-note");
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    $("camera-box").hidden = false;
  } else {
    note.dataset.t = window.isSecureContext ? "noLive" : "insecure";
    note.textContent = t(note.dataset.t);
    note.hidden = false;
  }
}

function toggleSettings(open) {
  const box = $("settings");
  box.hidden = open === undefined ? !box.hidden : !open;
  $("settings-toggle").setAttribute("aria-expanded", String(!box.hidden));
}

document.addEventListener("DOMContentLoaded", () => {
  lang = preferredLanguage();
  applyLanguage();
  $("api-key").value = stored(KEY_STORAGE);
  // The key field only matters on a service that asks for one: shown after its first 401,
  // or when this browser already holds a key.
  $("settings-toggle").hidden = !stored(KEY_STORAGE);
  $("settings-toggle").addEventListener("click", () => toggleSettings());
  $("api-key-save").addEventListener("click", () => {
    store(KEY_STORAGE, $("api-key").value.trim());
    toggleSettings(false);
    $("token").focus();
  });
  $("lang").addEventListener("click", () => {
    lang = lang === "ru" ? "en" : "ru";
    store(LANG_STORAGE, lang);
    applyLanguage();
  });
  $("photo").addEventListener("change", (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (file) { fromBox = false; verifyPhoto(file); }
  });
  // A keyboard-wedge scanner types the code and presses Enter: Enter submits the form, the
  // box is emptied at once and keeps the focus for the next guest; no click needed.
  $("paste-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const box = $("token");
    const token = box.value.replace(/[\r\n]+/g, "");
    box.value = "";
    box.focus();
    fromBox = true;
    if (token.trim()) verifyToken(token).then(() => box.focus());
    else showIdle("empty");
  });
  $("next").addEventListener("click", () => {
    $("token").value = "";
    reset();
    if (fromBox) $("token").focus(); // not after a camera scan: no phone keyboard popping up
  });
  $("camera-start").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", stopCamera);
  setupCamera();
});
