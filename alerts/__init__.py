"""Alert rules over stored readings (bin full, fire, tilt, battery, offline, frost, dry soil).

Not built yet: issue 8. Rules will read from the store and never from the intake path.
"""
