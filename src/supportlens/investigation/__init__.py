"""Session investigation: timeline player, analytics, customer journey, heatmap, annotations, export."""
