"""Editor widgets: palette, canvas, inspector, dataset panel. They read engine.spec and layer metadata only."""
