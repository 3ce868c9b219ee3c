// /docs: Swagger UI (served by the gateway from gateway/vendor) over this gateway's /openapi.json.
// A file of its own, not an inline script: the page's Content-Security-Policy allows none.
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
