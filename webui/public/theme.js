// Sets the theme before first paint so a dark-mode user never sees a white
// flash. A file, not an inline script: the hub's Content-Security-Policy
// allows scripts from the hub only.
try {
  var t = localStorage.getItem("sysperf-theme");
  var dark = t ? t === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  if (dark) document.documentElement.classList.add("dark");
} catch (e) {}
