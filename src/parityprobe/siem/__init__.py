"""SIEM evidence: whether each environment's SIEM received the events a step's action caused, and when.

A step's ``siem:`` expectations name a connector of the environment's ``siem`` section, a ``match`` on event
fields, a deadline (``within``) and ``expect: present | absent``. After a run's steps, one wait phase
(:mod:`.wait`) asks each connector, once per poll, for the events of every pending correlation id at once,
until everything expected has arrived or the last deadline has passed. Connectors are plugins of the
``parityprobe.siem`` entry-point group (:mod:`.connector`).
"""
