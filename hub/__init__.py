"""SIF Hub: routes SIF UK objects from school agents to LA services, per data sharing agreement."""

__version__ = "0.1.0"
