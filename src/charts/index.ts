// Charts without a browser or a network: server-drawn SVG (line and bar charts) for reports and schedule
// plots, and character-cell line charts for the terminal.
export { lineChartSvg, barChartSvg, escapeXml, PALETTE, paletteColor } from './svg.js';
export type { LineSeries, LineChartOptions, BarChartOptions, Bar, RefLine } from './svg.js';
export { terminalChart } from './terminal.js';
export type { TermSeries } from './terminal.js';
