"""Route planning: forecasts of bins and soil, the choice of stops, and routes that serve them.

Pure logic, no I/O: values in, values out. The service (app/) and the evaluation (simulator/)
feed it readings and store or score what it returns.
"""
