// Swagger UI set-up for /api/docs/, as a static file so the page runs under
// script-src 'self' (alerts_web/api/schema.py SwaggerView). The page's JSON data block
// "swagger-config" carries the schema URL, the auth scheme names and the CSRF header.
// Port of drf-spectacular's inline swagger_ui.js: an API key entered under "Authorize"
// is also sent when the schema is fetched, and unsafe methods carry the CSRF token.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("swagger-config").textContent);
  let schemaAuthFailed = false;
  let ui = null;

  const reloadSchema = () => setTimeout(() => ui.specActions.download());
  const reloadSchemaOnAuthChange = () => ({
    statePlugins: {
      auth: {
        wrapActions: {
          authorize: (ori) => (...args) => { schemaAuthFailed = false; reloadSchema(); return ori(...args); },
          logout: (ori) => (...args) => { schemaAuthFailed = false; reloadSchema(); return ori(...args); },
        },
      },
    },
  });

  const isSchemaUrl = (url) =>
    ui !== null && url === new URL(ui.getConfigs().url, document.baseURI).href;

  const injectAuthCredentials = (request) => {
    if (ui === null) return;
    const state = ui.getState().get("auth").get("authorized");
    if (state === undefined) return;
    const authorized = state.toJS();
    for (const name of config.schemaAuthNames) {
      const auth = authorized[name];
      if (auth === undefined || auth.schema === undefined) continue;
      if (auth.schema.type === "apiKey" && auth.schema.in === "header") {
        request.headers[auth.schema.name] = auth.value;
        return;
      }
      if (auth.schema.type === "http" && auth.schema.scheme === "bearer") {
        request.headers.Authorization = "Bearer " + auth.value;
        return;
      }
    }
  };

  ui = SwaggerUIBundle({
    url: config.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    plugins: config.schemaAuthNames.length > 0 ? [reloadSchemaOnAuthChange] : [],
    layout: "BaseLayout",
    requestInterceptor: (request) => {
      if (request.loadSpec && config.schemaAuthNames.length > 0 && !schemaAuthFailed) {
        injectAuthCredentials(request);
      }
      if (!["GET", undefined].includes(request.method) && request.credentials === "same-origin") {
        request.headers[config.csrfHeaderName] = config.csrfToken;
      }
      return request;
    },
    responseInterceptor: (response) => {
      if (!response.ok && isSchemaUrl(response.url) && !schemaAuthFailed) {
        schemaAuthFailed = true; // retry once without the credentials, then stop
        reloadSchema();
      }
      return response;
    },
    ...config.settings,
  });
})();
