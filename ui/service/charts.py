"""Plotly figures built from step records. No Streamlit here."""

from __future__ import annotations

import pandas  # noqa: F401  imported whole before any figure: see below
import plotly.graph_objects as go

# Plotly's validators look pandas up in sys.modules without importing it. Streamlit imports pandas lazily inside
# element calls, so on a fresh server one session's first widget could be importing it while another session's
# thread builds a chart: plotly then met the half-initialised module and the page failed with "partially
# initialized module 'pandas' has no attribute 'Series'". Importing it here, before any figure is built, closes that.

MAX_POINTS = 1500
COLORS = {"image": "#3b6ee8", "image + noise": "#2ca02c", "shuffled pixels": "#ff7f0e", "noise": "#d62728"}


def thin(records: list, max_points: int = MAX_POINTS) -> list:
    """Every k-th record (always keeping the last) so a long run stays cheap to draw."""
    if len(records) <= max_points:
        return records
    step = -(-len(records) // max_points)
    return records[::step] + ([records[-1]] if (len(records) - 1) % step else [])


def loss_figure(records: list, *, height: int = 340) -> go.Figure:
    """Loss (log y, left axis) and PSNR (right axis): against the ground truth when known, else the observation.

    Drawn every second while a job is watched, in the process that runs the fit: the layout is given whole
    (the one ``make_subplots(secondary_y=True)`` makes), which builds the figure in 30 ms instead of 91.
    """
    recs = thin(records)
    its = [r.iteration for r in recs]
    data = [go.Scatter(x=its, y=[r.loss for r in recs], name="loss", line=dict(color="#3b6ee8"))]
    if any(r.psnr_true is not None for r in recs):
        data += [
            go.Scatter(
                x=its, y=[r.psnr_true for r in recs], name="PSNR output", line=dict(color="#ff7f0e"), yaxis="y2"
            ),
            go.Scatter(
                x=its,
                y=[r.psnr_ema_true for r in recs],
                name="PSNR EMA",
                line=dict(color="#2ca02c", dash="dot"),
                yaxis="y2",
            ),
        ]
        psnr_title = "PSNR vs ground truth (dB)"
    else:
        data.append(
            go.Scatter(
                x=its,
                y=[r.psnr_observed for r in recs],
                name="PSNR vs observation",
                line=dict(color="#ff7f0e"),
                yaxis="y2",
            )
        )
        psnr_title = "PSNR vs observation (dB)"
    # An overlaying axis defaults to tickmode "sync", which puts the dB ticks at the log loss axis' gridlines
    # (10.49, 11.47, 12.27 ... dB); "auto" gives the PSNR axis its own round ticks.
    layout = dict(
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.12),
        xaxis=dict(anchor="y", domain=[0.0, 0.94], title=dict(text="iteration")),
        yaxis=dict(anchor="x", domain=[0.0, 1.0], type="log", title=dict(text="loss (MSE)")),
        yaxis2=dict(
            anchor="x", overlaying="y", side="right", title=dict(text=psnr_title), showgrid=False, tickmode="auto"
        ),
    )
    return go.Figure(data=data, layout=layout)


def impedance_figure(history: dict, *, height: int = 380) -> go.Figure:
    """The paper's Fig. 2: one loss curve per target against the iteration on a log axis."""
    fig = go.Figure()
    for name, records in history.items():
        recs = thin(records)
        fig.add_trace(
            go.Scatter(
                x=[r.iteration for r in recs], y=[r.loss for r in recs], name=name, line=dict(color=COLORS.get(name))
            )
        )
    last = max((r.iteration for records in history.values() for r in records), default=1)
    # Plotly's own log ticks label 20, 30 ... as "2, 3 ..." after 10; name 1, 2, 5, 10, 20, 50 ... in full.
    ticks = [m * 10**e for e in range(7) for m in (1, 2, 5) if m * 10**e <= last]
    fig.update_xaxes(type="log", title_text="iteration (log scale)", tickvals=ticks, ticktext=[f"{t:,}" for t in ticks])
    fig.update_yaxes(title_text="loss (MSE)", rangemode="tozero")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12))
    return fig
