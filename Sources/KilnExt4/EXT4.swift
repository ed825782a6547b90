/// ext4 filesystem images written without mkfs, mount or root.
public enum EXT4 {}
