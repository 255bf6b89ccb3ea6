// Swagger UI on the service's own OpenAPI schema; a file of its own so the CSP needs no inline script.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
