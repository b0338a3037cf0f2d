"""Reports over the results store: one self-contained HTML file (plots embedded as PNG data URIs)."""
