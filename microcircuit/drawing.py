"""Pictures and exports of the circuit graph (``microcircuit describe --draw/--graph``)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from microcircuit.circuit import Circuit

COMPARTMENT_COLOURS = {"basal": "#1f77b4", "apical": "#d62728", "dendrite": "#2ca02c", "soma": "#9467bd"}


def graphml_ready(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy whose attributes GraphML can store (str, int, float, bool)."""
    g = graph.copy()
    for _, data in g.nodes(data=True):
        for k, v in list(data.items()):
            if not isinstance(v, (str, int, float, bool)):
                data[k] = str(v)
    for _, _, data in g.edges(data=True):
        for k, v in list(data.items()):
            if not isinstance(v, (str, int, float, bool)):
                data[k] = str(v)
    return g


def layout(circuit: Circuit) -> dict[str, tuple[float, float]]:
    """Areas stacked bottom (input) to top (output); interneurons to the right of their area."""
    level = {circuit.input_population: 0}
    for k, q in enumerate(circuit.forward_chain, start=1):
        level[q.target] = k
    pos = {name: (0.0, float(k)) for name, k in level.items()}
    others = [n for n in circuit.populations if n not in level]
    for i, name in enumerate(others):
        sources = [q.source for q in circuit.into(name) if q.source in level and q.compartment != "soma"]
        y = float(level[sources[0]]) + 0.5 if sources else float(i)
        pos[name] = (1.2, y)
    return pos


def draw_circuit(circuit: Circuit, path: Path) -> None:
    """Draw the circuit to a PNG: populations (node size ~ neurons), projections coloured by the target
    compartment, each labelled with its name; projections that learn in some phase
    (:meth:`Circuit.learning_projections`) thick and marked "learns", fixed ones thin, nudging dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    g = circuit.graph
    pos = layout(circuit)
    learning = set(circuit.learning_projections())
    fig, ax = plt.subplots(figsize=(7, 1.8 + 1.6 * (circuit.depth + 1)))
    sizes = [1200 + 40 * min(g.nodes[n]["size"], 60) for n in g.nodes]
    colours = ["#dddddd" if g.nodes[n]["cell"] == "input" else
               "#fdd49e" if g.nodes[n]["cell"] == "interneuron" else "#c6dbef" for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=sizes, node_color=colours, edgecolors="black")
    shapes = {n: circuit.populations[n].shape for n in g.nodes}
    labels = {n: f"{n}\n({'x'.join(map(str, shapes[n])) if len(shapes[n]) > 1 else g.nodes[n]['size']})"
              for n in g.nodes}
    nx.draw_networkx_labels(g, pos, ax=ax, labels=labels, font_size=8)
    handles = [Line2D([0], [0], color=c, label=f"to {k}" + (" (nudging)" if k == "soma" else ""),
                      linestyle="--" if k == "soma" else "-")
               for k, c in COMPARTMENT_COLOURS.items()]
    handles += [Line2D([0], [0], color="black", linewidth=2.6, label="learns in some phase"),
                Line2D([0], [0], color="black", linewidth=1.0, label="fixed")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(f"{circuit.spec.name}: populations (neurons) and projections", loc="left", fontsize=10)
    ax.axis("off")
    ax.margins(0.2)
    fig.tight_layout()
    fig.canvas.draw()  # fixes the data -> display transform that places the labels on the arcs
    pairs = {(u, v) for u, v in g.edges()}
    for i, (u, v, name, data) in enumerate(g.edges(keys=True, data=True)):
        rad = 0.3 if (v, u) in pairs else 0.15 + 0.05 * (i % 3)  # two ways between two areas: apart
        learns = name in learning
        colour = COMPARTMENT_COLOURS[data["compartment"]]
        nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(u, v)], edge_color=colour,
                               connectionstyle=f"arc3,rad={rad}", arrows=True, arrowstyle="-|>", arrowsize=14,
                               width=2.6 if learns else 1.0, nodelist=list(g.nodes), node_size=sizes,
                               style="dashed" if data["kind"] == "nudging" else "solid")
        # the middle of matplotlib's arc3 curve: the chord's midpoint + rad/2 * (dy, -dx), in display units
        (x1, y1), (x2, y2) = ax.transData.transform([pos[u], pos[v]])
        mid = ax.transData.inverted().transform(((x1 + x2) / 2 + rad / 2 * (y2 - y1),
                                                 (y1 + y2) / 2 - rad / 2 * (x2 - x1)))
        conv = circuit.projections[name].conv
        notes = ([f"{'conv^T' if conv.transposed else 'conv'} {conv.kernel}"] if conv is not None else []) + (
            ["learns"] if learns else [])
        label = name + ("\n" + ", ".join(notes) if notes else "")
        ax.text(mid[0], mid[1], label, fontsize=7, color=colour, ha="center",
                va="center", fontweight="bold" if learns else "normal",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
