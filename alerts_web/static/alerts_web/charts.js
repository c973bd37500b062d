// Factor bar chart and score-history line chart of the patient and what-if pages.
(function () {
  "use strict";
  const dataEl = document.getElementById("chart-data");
  if (!dataEl || typeof Chart === "undefined") return;
  const data = JSON.parse(dataEl.textContent);
  Chart.defaults.animation = false;

  // also called by pending.js when an explained score's factors arrive after the page
  function drawFactors(factorCanvas, factors) {
    if (!factorCanvas || !factors.length) return;
    new Chart(factorCanvas, {
      type: "bar",
      data: {
        labels: factors.map((f) => f.label),
        datasets: [{
          label: "Percentage points of risk",
          data: factors.map((f) => f.value),
          backgroundColor: factors.map((f) => (f.value >= 0 ? "#dc3545" : "#198754")),
        }],
      },
      options: {
        indexAxis: "y",
        responsive: true,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: (items) => factors[items[0].dataIndex].label } },
        },
        scales: {
          y: {
            ticks: {
              autoSkip: false,
              font: { size: 11 },
              // whole labels, wrapped into lines of about 34 characters (never cut)
              callback: (value, index) => {
                const lines = [];
                for (const word of factors[index].label.split(" ")) {
                  const last = lines.length - 1;
                  if (last >= 0 && (lines[last] + " " + word).length <= 34) lines[last] += " " + word;
                  else lines.push(word);
                }
                return lines;
              },
            },
          },
        },
      },
    });
  }
  window.readmitCharts = { drawFactors };
  drawFactors(document.getElementById("factor-chart"), data.factors);
  const historyCanvas = document.getElementById("history-chart");
  if (historyCanvas && data.history.length) {
    new Chart(historyCanvas, {
      type: "line",
      data: {
        labels: data.history.map((h) => new Date(h.t).toLocaleString()),
        datasets: [{ label: "Probability", data: data.history.map((h) => h.p), borderColor: "#0d6efd", tension: 0.2 }],
      },
      options: { scales: { y: { min: 0, max: 1 } }, plugins: { legend: { display: false } } },
    });
  }
})();
