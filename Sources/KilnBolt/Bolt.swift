/// bbolt database files written and read without Go.
public enum Bolt {}
