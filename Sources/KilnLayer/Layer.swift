public enum Layer {}
