"""The report's single HTML template (Jinja2). Kept as a string so that it ships with the code, no data files.

The page checks itself once loaded: every <img> complete with a width, and no script error; it writes the
result into #edgemap-check (data-status="ok" or "failed"), which a headless browser test reads back.
"""

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<script>
window.edgemapErrors = [];  /* registered first, so that an error anywhere on the page is counted */
window.addEventListener("error", function (e) {
  if (e.target && e.target.tagName === "IMG") { return; }  /* images are checked one by one below */
  window.edgemapErrors.push(String(e.message || e));
}, true);
</script>
<style>
 body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.5em; color: #222; }
 h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
 .meta { color: #666; font-size: .9em; }
 table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .85em; width: 100%; }
 caption { text-align: left; color: #555; font-style: italic; padding-bottom: .3em; }
 th, td { border: 1px solid #ddd; padding: .25em .5em; vertical-align: top; overflow-wrap: anywhere; }
 th { background: #f4f6f8; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
 tr:nth-child(even) td { background: #fafbfc; }
 .figs { display: flex; flex-wrap: wrap; gap: 1em; } .figs img { max-width: 100%; border: 1px solid #eee; }
 .thumbs { display: flex; flex-wrap: wrap; gap: .8em; } .thumbs figure { margin: 0; text-align: center; font-size: .75em; width: 110px; }
 .thumbs img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; }
 #edgemap-check { color: #999; font-size: .75em; margin-top: 3em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }} by edgemap from the results store; {{ runs|length }} run(s):
{% for r in runs %}<code>{{ r.id }}</code> ({{ r.command }}{% if r.device %}, {{ r.device }}{% endif %}){% if not loop.last %}, {% endif %}{% endfor %}.
Every figure is labelled measured (on the host named in the evidence) or estimated.</p>
{% for s in sections %}
<section>
<h2>{{ s.title }}</h2>
{% for n in s.notes %}<p>{{ n }}</p>{% endfor %}
{% if s.images %}<div class="figs">{% for im in s.images %}<img src="{{ im.uri }}" alt="{{ im.alt }}" title="{{ im.alt }}">{% endfor %}</div>{% endif %}
{% if s.thumbs %}<div class="thumbs">{% for t in s.thumbs %}<figure><img src="{{ t.uri }}" alt="{{ t.caption }}"><figcaption>{{ t.caption }}</figcaption></figure>{% endfor %}</div>{% endif %}
{% for t in s.tables %}
<table>
<caption>{{ t.caption }}</caption>
<thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>{% for v in row %}<td{% if v is number %} class="num"{% endif %}>{{ v|cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{% endfor %}
</section>
{% endfor %}
<div id="edgemap-check" data-status="pending">checking images</div>
<script>
(function () {
  function check() {
    var errors = window.edgemapErrors;
    var imgs = Array.prototype.slice.call(document.images);
    var bad = imgs.filter(function (im) { return !(im.complete && im.naturalWidth > 0); });
    var box = document.getElementById("edgemap-check");
    var ok = bad.length === 0 && errors.length === 0;
    box.setAttribute("data-status", ok ? "ok" : "failed");
    box.textContent = (ok ? "images-ok " : "images-failed ") + (imgs.length - bad.length) + "/" + imgs.length +
      (errors.length ? " script-errors: " + errors.join("; ") : "");
  }
  if (document.readyState === "complete") { check(); } else { window.addEventListener("load", check); }
})();
</script>
</body>
</html>
"""
