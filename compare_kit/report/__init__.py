"""Report layer: tables, figures and the self-contained HTML page."""
