// Spend over the last days: an SVG bar chart built with DOM APIs (no innerHTML, no inline styles).
import { h, svg, usdText, number } from './ui.js';

const DAY = 86400;

/** Local-midnight unix seconds of the day `daysAgo` days before today. */
export function dayStart(daysAgo = 0) {
  const date = new Date();
  date.setHours(0, 0, 0, 0);
  date.setDate(date.getDate() - daysAgo);
  return Math.floor(date.getTime() / 1000);
}

function dayKey(seconds) {
  const date = new Date(seconds * 1000);
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
}

/** Empty buckets for the last `days` days (oldest first). */
function buckets(days) {
  const list = [];
  for (let ago = days - 1; ago >= 0; ago -= 1) {
    const start = dayStart(ago);
    list.push({ key: dayKey(start), start, quota: 0, count: 0, tokens: 0 });
  }
  return list;
}

/** Daily totals from hourly usage rows `{hour, quota, count, prompt_tokens, completion_tokens}`. */
export function dailyFromHourly(rows, days) {
  const list = buckets(days);
  const byKey = new Map(list.map((b) => [b.key, b]));
  for (const row of rows) {
    const bucket = byKey.get(dayKey(Number(row.hour)));
    if (!bucket) continue;
    bucket.quota += Number(row.quota || 0);
    bucket.count += Number(row.count || 0);
    bucket.tokens += Number(row.prompt_tokens || 0) + Number(row.completion_tokens || 0);
  }
  return list;
}

/** Daily totals from log rows `{created_at, quota, prompt_tokens, completion_tokens}`. */
export function dailyFromLogs(logs, days) {
  return dailyFromHourly(logs.map((log) => ({ hour: log.created_at, quota: log.quota, count: 1,
    prompt_tokens: log.prompt_tokens, completion_tokens: log.completion_tokens })), days);
}

/** A round step for the 4 gridlines (1, 2, 2.5 or 5 times a power of ten, in USD) so that 4 steps hold `quota`,
 * and the decimals that show every multiple of it exactly. */
function niceStep(quota) {
  const usd = quota / 500000 / 4;
  const power = 10 ** Math.floor(Math.log10(usd));
  const step = [1, 2, 2.5, 5, 10].find((f) => f * power >= usd * (1 - 1e-9)) * power;
  let decimals = step >= 1 ? 0 : 2;
  while (decimals < 8 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) decimals += 1;
  return { step, decimals };
}

/** The chart: one bar per day, the spend in USD; each bar has a tooltip (<title>). */
export function spendChart(daily, { title = 'Spend per day' } = {}) {
  const width = 720, height = 220, left = 64, right = 12, top = 16, bottom = 34;
  const max = Math.max(...daily.map((d) => d.quota), 0);
  const { step, decimals } = niceStep(max > 0 ? max * 1.05 : 500000);
  const scaleMax = step * 4 * 500000;
  const plotW = width - left - right, plotH = height - top - bottom;
  const slot = plotW / daily.length;
  const barW = Math.max(2, slot * 0.7);
  const titleId = `chart-title-${Math.random().toString(36).slice(2, 8)}`;
  const total = daily.reduce((sum, d) => sum + d.quota, 0);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-labelledby': titleId, preserveAspectRatio: 'xMidYMid meet' },
    svg('title', { id: titleId }, `${title}: ${usdText(total)} over ${daily.length} days`));
  for (let i = 0; i <= 4; i += 1) {
    const y = top + plotH - (plotH * i) / 4;
    chart.append(svg('line', { x1: left, x2: width - right, y1: y, y2: y, class: 'chart-grid' }),
      svg('text', { x: left - 6, y: y + 4, class: 'chart-axis', 'text-anchor': 'end' }, `$${(step * i).toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })}`));
  }
  const labelEvery = Math.ceil(daily.length / 10);
  daily.forEach((day, index) => {
    const barH = day.quota > 0 ? Math.max(1, (day.quota / scaleMax) * plotH) : 0;
    const x = left + index * slot + (slot - barW) / 2;
    const bar = svg('rect', { x, y: top + plotH - barH, width: barW, height: barH, rx: 2, class: 'chart-bar', dataset: { day: day.key } },
      svg('title', {}, `${day.key}: ${usdText(day.quota)} · ${number(day.count)} requests`));
    chart.append(bar);
    if (index % labelEvery === 0) {
      chart.append(svg('text', { x: left + index * slot + slot / 2, y: height - 12, class: 'chart-axis', 'text-anchor': 'middle' }, day.key.slice(5)));
    }
  });
  return h('figure', { class: 'chart-figure' }, chart,
    h('figcaption', { class: 'muted' }, `${title}, last ${daily.length} days: `, h('strong', { text: usdText(total) }),
      ` in ${number(daily.reduce((s, d) => s + d.count, 0))} requests`));
}
