// Charts of /reports, drawn with the vendored Chart.js from the report's own JSON
// (the same numbers as the tables and the CSV). No network needed.
(function () {
  "use strict";
  var node = document.getElementById("report-data");
  if (!node || !window.Chart) { return; }
  var report = JSON.parse(node.textContent);
  var t = report.tables;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function pct(v) { return v === null ? null : Math.round(v * 1000) / 10; }

  var days = t.weekly ? t.weekly.rows : t.daily.rows;
  var key = t.weekly ? "week" : "day";
  new Chart(document.getElementById("chart-daily"), {
    type: "bar",
    data: {
      labels: days.map(function (r) { return r[key]; }),
      datasets: [
        { label: "orders shipped", data: days.map(function (r) { return r.orders_shipped; }),
          backgroundColor: "#54aeff", yAxisID: "y" },
        { label: "on time %", type: "line", data: days.map(function (r) { return pct(r.on_time_rate); }),
          borderColor: "#1a7f37", backgroundColor: "#1a7f37", yAxisID: "rate", spanGaps: true }
      ]
    },
    options: { scales: { y: { beginAtZero: true, position: "left" },
                         rate: { min: 0, max: 100, position: "right", grid: { drawOnChartArea: false } } } }
  });

  var depts = t.timeouts_by_dept.rows;
  new Chart(document.getElementById("chart-timeouts"), {
    type: "bar",
    data: {
      labels: depts.map(function (r) { return r.dept; }),
      datasets: [{ label: "timed out %", data: depts.map(function (r) { return pct(r.rate); }),
                   backgroundColor: "#cf222e" }]
    },
    options: { indexAxis: "y", scales: { x: { min: 0, suggestedMax: 10 } } }
  });

  var types = t.exceptions_by_type.rows;
  new Chart(document.getElementById("chart-types"), {
    type: "bar",
    data: {
      labels: types.map(function (r) { return r.type.replace(/_/g, " "); }),
      datasets: [
        { label: "resolved", data: types.map(function (r) { return r.resolved; }), backgroundColor: "#1a7f37" },
        { label: "open at end", data: types.map(function (r) { return r.open_at_end; }), backgroundColor: "#9a6700" },
        { label: "closed or other", data: types.map(function (r) { return r.opened - r.resolved - r.open_at_end; }),
          backgroundColor: "#6e7781" }
      ]
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }
  });
  document.body.dataset.charts = "drawn";
})();
