"""Microsoft Clarity's server-side APIs: the Data Export API and the (undocumented) recordings list."""
