// Swagger UI over the server's own OpenAPI document. validatorUrl null: no call to
// validator.swagger.io (the badge would fetch from another host).
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: true,
});
