"""Alerts over stored readings: rules as data, pure checks, a lifecycle, notifications.

Rules read from the store, never from the intake path. One evaluation cycle::

    rules = load_rules(site_rules_path)              # defaults + the site's overrides
    windows = [...]                                   # DeviceWindow per device, from the store
    evaluations = evaluate(rules, windows, now)       # pure
    states, events = step(open_states, evaluations, now, rules)   # pure
    router.notify([compose(e, rules) for e in events], now)       # I/O

See docs/alerts.md. Modules: ``params`` (thresholds per kind), ``rules`` (loading),
``checks`` (DeviceWindow, Observation, one function per kind), ``lifecycle`` (AlertState,
step, acknowledge), ``messages`` (German/English texts), ``notify`` (channels and routing).
"""
from alerts.checks import (DeviceWindow, Evaluation, Observation, Requirements, dew_point_c,
                           evaluate, learned_interval_s, requirements)
from alerts.lifecycle import (AlertState, Closed, Event, Opened, Reminder, acknowledge,
                              alert_id, step)
from alerts.notify import (Delivery, DeliveryError, DeliveryResult, EmailChannel, MqttChannel,
                           Notification, Router, RouterConfig, WebhookChannel, compose,
                           load_router_config)
from alerts.rules import Rule, RuleSet, default_rules, load_rules

__all__ = [
    "AlertState", "Closed", "Delivery", "DeliveryError", "DeliveryResult", "DeviceWindow",
    "EmailChannel", "Evaluation", "Event", "MqttChannel", "Notification", "Observation",
    "Opened", "Reminder", "Requirements", "Router", "RouterConfig", "Rule", "RuleSet",
    "WebhookChannel", "acknowledge", "alert_id", "compose", "default_rules", "dew_point_c",
    "evaluate", "learned_interval_s", "load_router_config", "load_rules", "requirements", "step",
]
