"""The embedded simulator of the APIYI video API: ``lab.simulator.server.SimulatorServer``, ``lab.simulator.app.create_app``."""
