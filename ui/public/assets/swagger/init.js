// Swagger UI of the iiot API, from assets served by iiot itself.

// On every load Swagger UI asks its resolver for components.securitySchemes (in case they hold
// $refs). For an OpenAPI 3.1 document that resolver converts and normalises the whole document
// twice to resolve that one subtree: seconds of CPU for ours, and nothing to resolve in schemes
// that hold no $ref (Swagger UI then reads them from the document as it is).
const SECURITY_SCHEMES = "components,securitySchemes";

function hasRef(value) {
  return JSON.stringify(value ?? null).includes('"$ref"');
}

const RefFreeSecuritySchemes = () => ({
  statePlugins: {
    spec: {
      wrapActions: {
        requestResolvedSubtree: (original, system) => (path) => {
          if (String(path) === SECURITY_SCHEMES && !hasRef(system.specSelectors.specJson().getIn(path))) {
            return;
          }
          return original(path);
        },
      },
    },
  },
});

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  plugins: [RefFreeSecuritySchemes],
  layout: "BaseLayout",
  // No calls to the public validator: /docs works offline.
  validatorUrl: null,
});
