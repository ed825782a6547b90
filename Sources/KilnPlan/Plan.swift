/// Fleet readiness planning: EBS initialization, FSR, EFS preloads.
public enum Plan {}
