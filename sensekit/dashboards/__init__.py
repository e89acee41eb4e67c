"""What dashboards use: reading sensekit's topics back (a live broker or a recorded log), the
Home Assistant discovery, the live terminal view and the day report."""
