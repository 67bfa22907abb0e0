/** The browser phone's entry point (bundled into dist/app.js). */
import { App } from './app.js';

const root = document.getElementById('app');
if (root) void new App(root).start();
