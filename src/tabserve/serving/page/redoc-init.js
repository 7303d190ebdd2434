// ReDoc over the server's own OpenAPI document (no fonts from elsewhere: the system's).
Redoc.init("openapi.json", {
  hideDownloadButton: false,
  theme: { typography: { fontFamily: "system-ui, sans-serif", headings: { fontFamily: "system-ui, sans-serif" } } },
}, document.getElementById("redoc"));
