"""The one pipeline: recipes of registered passes run on artifacts (edgemap.pipeline.recipe), with the data
context a search and its replay share (edgemap.pipeline.context). Sits above compress and convert, below search."""
