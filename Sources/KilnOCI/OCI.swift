public enum OCI {}
