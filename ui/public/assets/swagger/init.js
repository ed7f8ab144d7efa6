// Swagger UI of the iiot API, from assets served by iiot itself.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // No calls to the public validator: /docs works offline.
  validatorUrl: null,
});
