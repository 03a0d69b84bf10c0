// Start the GOV.UK Frontend components (an ES module; pages work without it).
import { initAll } from "/govuk/govuk-frontend.min.js";
initAll();
